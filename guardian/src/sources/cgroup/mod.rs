//! cgroup reader for pure v2, hybrid and pure v1 hosts. (Owned by the memory-sources work.)
