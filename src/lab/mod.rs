//! The lab's instruments: what looks at containers from outside, or probes
//! them from inside, to show what each chapter isolates and what it costs.
//! Someone improving the scorecard works here and never needs to open
//! `runtime`.
//!
//! | file | what it does |
//! |---|---|
//! | `scorecard` | the checks, the cells each chapter is expected to show, the matrix |
//! | `heat_map` | the matrix as an SVG picture, for the book |
//! | `svg` | what the book's hand-written SVG pictures share: escaping text |
//! | `anatomy` | `lab anatomy`: a running ch09 container's layers, read from the host |
//! | `anatomy/diagram` | those layers as an SVG picture, for the book |
//! | `probe` | `lab-probe`: runs the checks inside a container |
//! | `spoof` | `lab-probe --spoof-arp/--spoof-source`: forged ARP and IPv4 from inside |
//! | `tour` | `lab tour`: a stand-in host with bait, every chapter probed |
//! | `engine` | the tour as an OCI engine for ch10: bundle, network between create and start |
//! | `loopdev` | a loop device of the tour's, bait for the raw-device check |
//! | `doctor` | `lab doctor`: is this machine ready, and what to install |
//! | `clean` | `lab clean`: reclaim what a killed run left behind |
//! | `bench` | `lab bench`: each chapter's cost against chroot, bwrap, runc |
//! | `bench/images` | chapter 08's rows: load, pull and run, against tar, skopeo and ch07 |
//! | `bench/hardening` | chapter 09's rows: seccomp per call against ch08, compile and load of the filter |
//! | `bench/oci` | chapter 10's rows: run and create+start+delete beside runc, podman run --rm with each |
//!
//! None belongs to one chapter: each measures every chapter from ch00 on,
//! and a chapter that adds an idea adds its rows or columns here (ch04 the
//! network checks and the bridge's bench row, ch06 the budgets).
//!
//! May use: `crate::runtime` (to start containers the way chapters do, or to
//! name the runtime's state) and the shared plumbing. Nothing in `runtime`
//! uses this folder.

pub mod anatomy;
pub mod bench;
pub mod clean;
pub mod doctor;
pub mod engine;
pub mod heat_map;
pub mod loopdev;
pub mod probe;
pub mod scorecard;
pub mod spoof;
pub mod svg;
pub mod tour;
