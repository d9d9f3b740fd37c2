//! Reference programs on the `rss_stat` tracepoint, assembled by hand and loaded with the
//! bare `bpf(2)` syscall, to split the page-fault storm's cost into what the attachment
//! itself costs (an empty body) and what each step of guardian's fast path adds (one
//! `bpf_probe_read_kernel`, then a per-CPU array lookup), and to measure the cheaper
//! alternative: a BTF-typed tracepoint (`tp_btf`) that loads the counter directly from
//! the typed `mm` pointer instead of calling the probe-read helper. Detached on drop.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::bail;

use super::kernel_btf::RssStatBtf;

/// Which body the reference program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `return 0`.
    Empty,
    /// Reads 8 bytes of the `mm_struct` with `bpf_probe_read_kernel`, as guardian's fast
    /// path reads the counter.
    ProbeRead,
    /// The probe read, then a lookup in a one-entry per-CPU array (guardian's cache).
    ProbeReadLookup,
    /// `tp_btf`: the anon counter filter, a direct load of `mm->rss_stat[1].count`
    /// through the BTF-typed pointer (no helper call), then the per-CPU lookup.
    BtfDirectLoadLookup,
}

impl Body {
    pub fn label(self) -> &'static str {
        match self {
            Body::Empty => "empty raw tracepoint",
            Body::ProbeRead => "raw tp + probe read",
            Body::ProbeReadLookup => "raw tp + probe read + per-CPU lookup",
            Body::BtfDirectLoadLookup => "tp_btf + direct load + per-CPU lookup",
        }
    }
}

/// A loaded, attached reference program; dropping it detaches it.
pub struct NullProbe {
    _link: OwnedFd,
    _prog: OwnedFd,
    _map: Option<OwnedFd>,
}

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_RAW_TP: u32 = 23;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_PROBE_READ_KERNEL: i32 = 113;

#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
}

#[repr(C)]
struct RawTracepointOpenAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

impl NullProbe {
    /// Loads `body` and attaches it to the `rss_stat` tracepoint.
    pub fn attach(body: Body) -> anyhow::Result<NullProbe> {
        let map = match body {
            Body::ProbeReadLookup | Body::BtfDirectLoadLookup => Some(percpu_array()?),
            Body::Empty | Body::ProbeRead => None,
        };
        let map_fd = map.as_ref().map(|fd| fd.as_raw_fd());
        let (prog_type, attach_type, attach_btf_id, insns) = match body {
            Body::BtfDirectLoadLookup => {
                let btf = RssStatBtf::read()?;
                let insns = btf_program(btf.anon_count_offset, map_fd)?;
                (
                    BPF_PROG_TYPE_TRACING,
                    BPF_TRACE_RAW_TP,
                    btf.attach_btf_id,
                    insns,
                )
            }
            _ => (BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 0, program(body, map_fd)),
        };
        let license = c"GPL";
        let mut log = vec![0u8; 65536];
        let mut name = [0u8; 16];
        name[..9].copy_from_slice(b"bench_ref");
        let attr = ProgLoadAttr {
            prog_type,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            kern_version: 0,
            prog_flags: 0,
            prog_name: name,
            prog_ifindex: 0,
            expected_attach_type: attach_type,
            prog_btf_fd: 0,
            func_info_rec_size: 0,
            func_info: 0,
            func_info_cnt: 0,
            line_info_rec_size: 0,
            line_info: 0,
            line_info_cnt: 0,
            attach_btf_id,
        };
        let prog = match bpf(BPF_PROG_LOAD, &attr) {
            Ok(fd) => fd,
            Err(error) => {
                let text = String::from_utf8_lossy(&log);
                bail!(
                    "loading the {} program: {error}; verifier: {}",
                    body.label(),
                    text.trim_end_matches('\0').trim()
                );
            }
        };
        // A BTF-typed program names its tracepoint through its attach_btf_id.
        let name = std::ffi::CString::new("rss_stat")?;
        let open = RawTracepointOpenAttr {
            name: if prog_type == BPF_PROG_TYPE_TRACING {
                0
            } else {
                name.as_ptr() as u64
            },
            prog_fd: prog.as_raw_fd() as u32,
            _pad: 0,
        };
        let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &open).map_err(|error| {
            anyhow::anyhow!(
                "attaching the {} program to rss_stat: {error}",
                body.label()
            )
        })?;
        Ok(NullProbe {
            _link: link,
            _prog: prog,
            _map: map,
        })
    }
}

fn percpu_array() -> anyhow::Result<OwnedFd> {
    let attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_PERCPU_ARRAY,
        key_size: 4,
        value_size: 48,
        max_entries: 1,
        map_flags: 0,
    };
    bpf(BPF_MAP_CREATE, &attr).map_err(|error| anyhow::anyhow!("creating a per-CPU array: {error}"))
}

/// One `struct bpf_insn`: opcode, dst and src registers, offset, immediate.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | (u64::from(dst | (src << 4)) << 8)
        | (u64::from(off as u16) << 16)
        | (u64::from(imm as u32) << 32)
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R6: u8 = 6;
const R10: u8 = 10;

fn program(body: Body, map_fd: Option<i32>) -> Vec<u64> {
    let mut code = Vec::new();
    if body != Body::Empty {
        code.extend([
            insn(0xbf, R6, R1, 0, 0),                      // r6 = ctx
            insn(0x79, R3, R6, 0, 0),                      // r3 = ctx->args[0] (mm)
            insn(0xbf, R1, R10, 0, 0),                     // r1 = fp
            insn(0x07, R1, 0, 0, -8),                      // r1 -= 8
            insn(0xb7, R2, 0, 0, 8),                       // r2 = 8
            insn(0x85, 0, 0, 0, HELPER_PROBE_READ_KERNEL), // probe_read_kernel(fp-8, 8, mm)
        ]);
    }
    if let Some(fd) = map_fd {
        code.extend([
            insn(0x62, R10, 0, -12, 0), // *(u32 *)(fp-12) = 0
            insn(0xbf, R2, R10, 0, 0),  // r2 = fp
            insn(0x07, R2, 0, 0, -12),  // r2 -= 12
            insn(0x18, R1, 1, 0, fd),   // r1 = map (ld_imm64, pseudo fd)
            insn(0, 0, 0, 0, 0),
            insn(0x85, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM), // map_lookup_elem(map, &key)
        ]);
    }
    code.extend([
        insn(0xb7, R0, 0, 0, 0), // r0 = 0
        insn(0x95, 0, 0, 0, 0),  // exit
    ]);
    code
}

/// `tp_btf/rss_stat(mm, member)`: return unless member is MM_ANONPAGES, load the anon
/// counter straight from the typed `mm` (the verifier turns it into a fault-safe load),
/// then look up the per-CPU array.
fn btf_program(anon_count_offset: u32, map_fd: Option<i32>) -> anyhow::Result<Vec<u64>> {
    let offset = i16::try_from(anon_count_offset).map_err(|_| {
        anyhow::anyhow!("mm->rss_stat at {anon_count_offset} is past a BPF load's reach")
    })?;
    let mut code = vec![
        insn(0x79, R2, R1, 8, 0),      // r2 = ctx[1] (member)
        insn(0x55, R2, 0, 0, 1),       // if r2 != 1 goto +0 (patched below)
        insn(0x79, R3, R1, 0, 0),      // r3 = ctx[0] (mm, BTF-typed)
        insn(0x79, R4, R3, offset, 0), // r4 = mm->rss_stat[1].count
    ];
    if let Some(fd) = map_fd {
        code.extend([
            insn(0x62, R10, 0, -12, 0), // *(u32 *)(fp-12) = 0
            insn(0xbf, R2, R10, 0, 0),  // r2 = fp
            insn(0x07, R2, 0, 0, -12),  // r2 -= 12
            insn(0x18, R1, 1, 0, fd),   // r1 = map
            insn(0, 0, 0, 0, 0),
            insn(0x85, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM), // map_lookup_elem(map, &key)
        ]);
    }
    // The filter jumps over everything after it, to `r0 = 0`.
    let skip = (code.len() - 2) as i16;
    code[1] = insn(0x55, R2, 0, skip, 1);
    code.extend([insn(0xb7, R0, 0, 0, 0), insn(0x95, 0, 0, 0, 0)]);
    Ok(code)
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<OwnedFd> {
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix of the size we pass; the
    // kernel zero-extends the rest.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
