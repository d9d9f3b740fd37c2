//! What the BTF-typed reference program needs from the running kernel's BTF: the type id
//! of the `rss_stat` tracepoint's prototype (`btf_trace_rss_stat`), and where the anon
//! RSS counter sits inside `struct mm_struct`.

use anyhow::{Context as _, bail};
use btf_rs::{Btf, Type};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// The kernel's BTF facts for a `tp_btf/rss_stat` program.
pub struct RssStatBtf {
    /// BTF id of `btf_trace_rss_stat`, the program's attach target.
    pub attach_btf_id: u32,
    /// Byte offset of `mm->rss_stat[MM_ANONPAGES].count`.
    pub anon_count_offset: u32,
}

impl RssStatBtf {
    pub fn read() -> anyhow::Result<RssStatBtf> {
        let btf = Btf::from_file(VMLINUX)
            .map_err(|error| anyhow::anyhow!("reading {VMLINUX}: {error}"))?;
        let attach_btf_id = btf
            .resolve_ids_by_name("btf_trace_rss_stat")
            .ok()
            .and_then(|ids| ids.first().copied())
            .context("no btf_trace_rss_stat in the kernel's BTF")?;
        let mm = find_struct(&btf, "mm_struct")?;
        let counter = find_struct(&btf, "percpu_counter")?;
        let rss_stat = member_offset(&btf, &mm, "rss_stat").context("no mm_struct.rss_stat")?;
        let count = member_offset(&btf, &counter, "count").context("no percpu_counter.count")?;
        // MM_ANONPAGES is 1.
        let offset = rss_stat + counter.size() as u64 + count;
        Ok(RssStatBtf {
            attach_btf_id,
            anon_count_offset: u32::try_from(offset)?,
        })
    }
}

fn find_struct(btf: &Btf, name: &str) -> anyhow::Result<btf_rs::Struct> {
    let types = btf
        .resolve_types_by_name(name)
        .map_err(|error| anyhow::anyhow!("struct {name}: {error}"))?;
    for ty in types {
        if let Type::Struct(found) = ty
            && !found.members.is_empty()
        {
            return Ok(found);
        }
    }
    bail!("no struct {name} in the kernel's BTF")
}

/// Byte offset of member `name`, looking inside anonymous structs and unions.
fn member_offset(btf: &Btf, parent: &btf_rs::Struct, name: &str) -> Option<u64> {
    parent.members.iter().find_map(|member| {
        let here = u64::from(member.bit_offset() / 8);
        match btf.resolve_name(member) {
            Ok(member_name) if member_name == name => Some(here),
            Ok(member_name) if member_name.is_empty() => {
                match btf.resolve_chained_type(member).ok()? {
                    Type::Struct(inner) | Type::Union(inner) => {
                        member_offset(btf, &inner, name).map(|offset| here + offset)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    })
}
