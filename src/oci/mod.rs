//! Chapter 10: the OCI runtime specification's side of the lab. A bundle
//! (a root filesystem and its `config.json`) is read here, and turned into
//! the steps chapters 02-09 built; the state runc keeps for `start`,
//! `kill` and `delete` lives here too.
