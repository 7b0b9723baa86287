//! The image side (ch08): what a container is made from. A student looking
//! for "where do layers come from" needs only this folder.
//!
//! | file | what it does | introduced in |
//! |---|---|---|
//! | `digest` | sha256 content addresses, checked on every write | ch08 |
//! | `reference` | `name:tag`, `host:port/path@sha256:...`, as Docker parses them | ch08 |
//! | `spec` | the OCI and Docker documents: index, manifest, config | ch08 |
//! | `store` | the content-addressed store: blobs, layers, images, tags | ch08 |
//! | `layer` | unpack one layer tar, whiteouts and hostile archives | ch08 |
//! | `registry` | pull: the OCI distribution API, tokens, parallel downloads | ch08 |
//! | `archive` | load (docker-archive, oci-archive, OCI layout) and import | ch08 |
//! | `commit` | a container's writable layer as a new layer: whiteouts translated | ch08 |
//! | `export` | an image as blobs again: layer blobs, config, manifest | ch08 |
//! | `save` | save: docker-archive and oci-archive files | ch08 |
//! | `push` | push: blob uploads (monolithic, chunked), manifest last | ch08 |
//! | `containerfile` | the Dockerfile subset: logical lines, variables, instructions | ch08 |
//! | `build` | build: each step from the one before, a cache of them | ch08 |
//! | `manage` | images, rmi, image inspect, history, image prune, diff | ch08 |
//! | `verbs` | the image verbs' flags, and what pull, load and import end with | ch08 |
//!
//! May use: the shared plumbing and the runtime (the store takes the
//! runtime's file lock). The runtime never uses it: a container's root is
//! a list of directories by the time the runtime sees it.

pub mod archive;
pub mod build;
pub mod commit;
pub mod containerfile;
pub mod digest;
pub mod export;
pub mod layer;
pub mod manage;
pub mod push;
pub mod reference;
pub mod registry;
pub mod save;
pub mod spec;
pub mod store;
pub mod verbs;
