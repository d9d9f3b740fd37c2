//! /proc reader: processes and host memory. (Owned by the memory-sources work.)
