//! A real registry for the tests: Debian's docker-registry (distribution
//! 2.8) on 127.0.0.1, filled by skopeo, its access log read back to count
//! what a client asked for. Used by ch08_pull (pull) and ch08_ship (push).

use super::{Scratch, require_tool, stderr};
use container_lab::image::digest::Digest;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `size` bytes that do not compress (a linear congruential generator):
/// layers big enough for two pulls to overlap, or for a push in chunks.
pub fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..size)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A docker-registry on 127.0.0.1, its storage and log in a scratch
/// directory; killed when dropped (also when the test fails), before the
/// directory goes.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: Scratch,
}

impl Registry {
    pub fn start(name: &str) -> Registry {
        Registry::start_with(name, |_| String::new())
    }

    /// A registry whose configuration ends with what `extra` writes, given
    /// the registry's directory.
    pub fn start_with(name: &str, extra: impl FnOnce(&Path) -> String) -> Registry {
        require_tool("docker-registry", "docker-registry");
        require_tool("skopeo", "skopeo");
        let dir = Scratch::new(&format!("registry-{name}"));
        let port = free_port();
        let extra = extra(&dir);
        // distribution's configuration (docs/configuration.md): the access
        // log (on by default) is how the tests count what was downloaded.
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("registry.log"))
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = Registry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on 127.0.0.1:{port}:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Copy `name` of a layout into the registry as REPO:TAG with skopeo
    /// copy, with its `flags` (`--all` for every platform of an index,
    /// `--format v2s2` to convert to Docker's schema 2).
    pub fn push(&self, layout: &Path, name: &str, repository_tag: &str, flags: &[&str]) {
        let mut skopeo = Command::new("skopeo");
        skopeo.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        skopeo.args(flags);
        let output = skopeo
            .arg(format!("oci:{}:{name}", layout.display()))
            .arg(format!("docker://{}/{repository_tag}", self.host()))
            .output()
            .expect("run skopeo");
        assert!(
            output.status.success(),
            "skopeo copy failed: {}",
            stderr(&output)
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// The lines of the access log (Apache's combined format) for our
    /// client's GETs whose path contains `part`, counted once the count
    /// stops changing (the registry logs a request after it answers it).
    pub fn gets(&self, part: &str) -> usize {
        self.requests("GET", part)
    }

    /// The same for any method (`HEAD`, `POST`, `PATCH`, `PUT`).
    pub fn requests(&self, method: &str, part: &str) -> usize {
        let request = format!("\"{method} /v2/");
        let count = || {
            self.log()
                .lines()
                .filter(|l| l.contains(&request) && l.contains(part))
                .filter(|l| l.contains("container-lab/"))
                .count()
        };
        let mut last = count();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            match count() {
                now if now == last => return now,
                now => last = now,
            }
        }
    }

    /// Where distribution keeps a blob's bytes (its storage driver layout:
    /// docker/registry/v2/blobs/sha256/XX/HEX/data).
    pub fn blob_data(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&digest.hex()[..2])
            .join(digest.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
