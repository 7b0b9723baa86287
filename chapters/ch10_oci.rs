//! ch10-oci: an OCI runtime with runc's command line (OCI 2015,
//! containerd and CRI-O 2017-2019). Work in progress.

fn main() {
    eprintln!("ch10-oci: not built yet");
    std::process::exit(1);
}
