//! Ring buffer records to typed events: the header's kind says which struct follows.

use guardian_ebpf::{EventHeader, EventKind, ProcEvent, RssEvent};

use crate::sources::KernelEvent;

/// Reads `T` from the start of `bytes` when it is long enough.
fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    (bytes.len() >= size_of::<T>())
        // SAFETY: length checked; the shared types are plain integers valid for any bits,
        // and read_unaligned has no alignment requirement.
        .then(|| unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Decodes one record; unknown or short records are `None` (and counted by the caller).
pub fn decode(bytes: &[u8]) -> Option<KernelEvent> {
    let header: EventHeader = read(bytes)?;
    let pid = header.tgid as i32;
    Some(match EventKind::from_raw(header.kind)? {
        EventKind::Rss => {
            let event: RssEvent = read(bytes)?;
            KernelEvent::Rss {
                pid,
                member: event.member,
                pages: event.pages,
            }
        }
        EventKind::Oom => KernelEvent::Oom(read(bytes)?),
        EventKind::Fork => {
            let event: ProcEvent = read(bytes)?;
            KernelEvent::Fork {
                pid,
                parent: event.parent_tgid as i32,
                start_ns: event.start_boottime_ns,
            }
        }
        EventKind::Exec => KernelEvent::Exec { pid },
        EventKind::Exit => KernelEvent::Exit { pid },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: Copy>(value: &T) -> Vec<u8> {
        // SAFETY: reading the bytes of a plain #[repr(C)] integer struct.
        unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
            .to_vec()
    }

    #[test]
    fn rss_records_round_trip() {
        let event = RssEvent {
            header: EventHeader {
                kind: EventKind::Rss as u32,
                tgid: 42,
                ktime_ns: 1,
            },
            member: 1,
            _pad: 0,
            pages: 2560,
        };
        assert_eq!(
            decode(&bytes_of(&event)),
            Some(KernelEvent::Rss {
                pid: 42,
                member: 1,
                pages: 2560
            })
        );
    }

    #[test]
    fn fork_records_carry_the_childs_identity() {
        let event = ProcEvent {
            header: EventHeader {
                kind: EventKind::Fork as u32,
                tgid: 7,
                ktime_ns: 1,
            },
            parent_tgid: 3,
            _pad: 0,
            start_boottime_ns: 123,
        };
        assert_eq!(
            decode(&bytes_of(&event)),
            Some(KernelEvent::Fork {
                pid: 7,
                parent: 3,
                start_ns: 123
            })
        );
    }

    #[test]
    fn short_and_unknown_records_are_rejected() {
        let header = EventHeader {
            kind: EventKind::Rss as u32,
            tgid: 1,
            ktime_ns: 0,
        };
        assert_eq!(decode(&bytes_of(&header)), None, "header without body");
        let unknown = EventHeader { kind: 99, ..header };
        assert_eq!(decode(&bytes_of(&unknown)), None);
        assert_eq!(decode(&[1, 2]), None);
    }
}
