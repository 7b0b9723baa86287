//! container-lab: a container runtime rebuilt the way history built it.
//!
//! The chapter binaries in `chapters/` are short recipes; what they call is
//! here, in three parts (drawn in the book's "How the code is laid out"):
//!
//! - [`runtime`]: the mechanisms a chapter assembles into a container, one
//!   file per idea (fork and exec, chroot, namespaces, mounts, the network,
//!   user namespaces, cgroups, ...). This is where to look for "how does the
//!   runtime do X".
//! - [`lab`]: the instruments that look at containers from outside: the
//!   tour and its scorecard, the in-container probe, doctor, clean, bench.
//!   They use the runtime; the runtime never uses them.
//! - the shared plumbing at the top: [`cli`] (the options every chapter
//!   composes), [`narrator`] (`--explain` and `--step`), [`error`] (one error
//!   per failing step, mapped to Docker's exit codes), [`program`] (name,
//!   command line, exit), [`hostinfo`] (read-only facts about the host) and
//!   [`rootfs`] (finding and building root filesystems).
//!
//! Dependencies point one way: chapters and `src/bin` use everything;
//! `lab` uses `runtime` and the plumbing; `runtime` uses only the plumbing
//! (and `cli` is the one plumbing module that names runtime types, since it
//! turns flags into them). `tests/layout.rs` checks this.

pub mod cli;
pub mod error;
pub mod hostinfo;
pub mod image;
pub mod lab;
pub mod narrator;
pub mod oci;
pub mod program;
pub mod rootfs;
pub mod runtime;

pub use program::{command_line, exit_with_error, program_name, run, shell_words};
