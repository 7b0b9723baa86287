//! ch08-images build, for real: a Containerfile's steps, each an image,
//! RUN in a real container, and the cache that makes an unchanged rebuild
//! run nothing.
//!
//! Each test has an image store of its own (CONTAINER_LAB_STORAGE) with
//! the lab's rootfs imported as `lab/base:v1`, and a build context of its
//! own. Containers are named `bld-PID-...`; the build's own RUN
//! containers are `build-BUILDPID-...`, checked gone after every build.

mod common;
use common::*;
use std::process::{Command, Output, Stdio};

const CH: &str = "ch08-images";

struct Lab {
    store: Scratch,
    context: Scratch,
    names: Vec<String>,
}

impl Lab {
    fn new(test: &str) -> Option<Lab> {
        if !require_root(test) {
            return None;
        }
        let lab = Lab {
            store: Scratch::new(&format!("store-{test}")),
            context: Scratch::new(&format!("context-{test}")),
            names: Vec::new(),
        };
        let output = lab.ch08(&["import", rootfs().to_str().unwrap(), "lab/base:v1"]);
        assert!(output.status.success(), "import: {}", stderr(&output));
        Some(lab)
    }

    fn command(&self) -> Command {
        let mut command = Command::new(bin(CH));
        command
            .env("CONTAINER_LAB_STORAGE", &*self.store)
            .env("NO_COLOR", "1")
            .current_dir(&*self.context)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn ch08(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// `build ARGS... .`, and a check that none of its RUN containers
    /// is left.
    fn build(&self, args: &[&str]) -> Output {
        let child = self
            .command()
            .arg("build")
            .args(args)
            .arg(".")
            .spawn()
            .unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        let ps = stdout(&self.ch08(&["ps", "-a"]));
        assert!(
            !ps.contains(&format!("build-{pid}-")),
            "a RUN container was left behind:\n{ps}"
        );
        output
    }

    fn write(&self, path: &str, content: &str) {
        let path = self.context.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// The context of SIX_STEPS: the Containerfile, the files its COPY
    /// reads, and a log file `.dockerignore` leaves out.
    fn six_steps(&self) {
        self.write("Containerfile", SIX_STEPS);
        self.write("app/hello.txt", "hello file\n");
        self.write("app/notes.log", "ignored\n");
        self.write(".dockerignore", "# logs stay out\n**/*.log\n");
    }

    fn name(&mut self, what: &str) -> String {
        let name = format!("bld-{}-{what}", std::process::id());
        self.names.push(name.clone());
        name
    }

    /// What the store holds: layers/, images/, blobs, containers/, tmp/,
    /// and tags.json.
    fn listing(&self) -> Vec<String> {
        let mut found = Vec::new();
        for dir in ["layers", "images", "blobs/sha256", "containers", "tmp"] {
            for entry in std::fs::read_dir(self.store.join(dir)).unwrap().flatten() {
                found.push(format!("{dir}/{}", entry.file_name().to_string_lossy()));
            }
        }
        found.push(std::fs::read_to_string(self.store.join("tags.json")).unwrap_or_default());
        found.sort();
        found
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.command().args(["rm", "-f", name]).output();
        }
    }
}

fn id_of(output: &Output) -> String {
    assert!(output.status.success(), "build failed:\n{}", stderr(output));
    let id = stdout(output).trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id:?}");
    id
}

/// The STEP lines and what each said: (step, cached).
fn steps(output: &Output) -> Vec<(String, bool)> {
    let text = stderr(output);
    let mut steps: Vec<(String, bool)> = Vec::new();
    for line in text.lines() {
        if let Some(step) = line.strip_prefix("STEP ") {
            steps.push((step.to_string(), false));
        } else if line.starts_with("--> Using cache ") {
            steps.last_mut().unwrap().1 = true;
        }
    }
    steps
}

/// A build that failed: after the STEP lines it got to, one error line
/// naming the step and one hint, nothing on stdout.
fn assert_build_failure(output: &Output, message: &str) {
    let err = stderr(output);
    assert_eq!(code(output), 1, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("STEP ")).collect();
    let [error, hint] = lines[lines.len().saturating_sub(2)..] else {
        panic!("want an error line and a hint line, got: {err}")
    };
    assert!(
        error.contains(" error: ") && error.contains(message),
        "{err}"
    );
    assert!(hint.contains(" hint: "), "{err}");
    assert_eq!(err.matches(" error: ").count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(stdout(output), "", "stdout must stay clean");
}

const SIX_STEPS: &str = "\
# a comment, and a continued line
FROM lab/base:v1
ENV GREETING=hello \\
    TARGET=world
COPY app /app/
RUN echo \"ran as $(id -u)\" > /ran.txt && cat /app/hello.txt
WORKDIR /app
CMD [\"/bin/sh\", \"-c\", \"echo $GREETING $TARGET; pwd; cat hello.txt /ran.txt; ls /app\"]
";

#[test]
fn a_six_step_build_runs_and_an_unchanged_rebuild_reuses_every_step() {
    let Some(lab) = Lab::new("six") else {
        return;
    };
    lab.six_steps();

    let first = lab.build(&["-t", "lab/app:v1"]);
    let id = id_of(&first);
    assert!(
        stderr(&first).contains("hello file"),
        "RUN's output is shown:\n{}",
        stderr(&first)
    );
    assert!(
        stderr(&first).contains("Successfully tagged lab/app:v1"),
        "{}",
        stderr(&first)
    );
    assert_eq!(steps(&first).len(), 6);
    assert!(steps(&first).iter().all(|(_, cached)| !cached));

    let output = lab.ch08(&["run", "--rm", "--net", "none", "lab/app:v1"]);
    assert_eq!(
        stdout(&output),
        "hello world\n/app\nhello file\nran as 0\nhello.txt\n",
        "the copied file, the RUN's effect, the env, the workdir and the CMD; not the ignored log\n{}",
        stderr(&output)
    );

    // Nothing changed: every step from the cache, the same image, fast.
    let started = std::time::Instant::now();
    let again = lab.build(&["-t", "lab/app:v1"]);
    let took = started.elapsed();
    assert_eq!(id_of(&again), id);
    let cached: Vec<bool> = steps(&again).iter().map(|(_, c)| *c).collect();
    assert_eq!(
        cached,
        [false, true, true, true, true, true],
        "{}",
        stderr(&again)
    );
    assert!(
        took.as_secs_f64() < 0.2,
        "an unchanged rebuild took {took:?}"
    );

    // An ignored file changed: still every step from the cache.
    lab.write("app/notes.log", "ignored, changed\n");
    assert_eq!(id_of(&lab.build(&["-t", "lab/app:v1"])), id);

    // A copied file changed: COPY and every step after it are built again.
    lab.write("app/hello.txt", "changed file\n");
    let changed = lab.build(&["-t", "lab/app:v1"]);
    let new_id = id_of(&changed);
    assert_ne!(new_id, id);
    let cached: Vec<bool> = steps(&changed).iter().map(|(_, c)| *c).collect();
    assert_eq!(
        cached,
        [false, true, false, false, false, false],
        "{}",
        stderr(&changed)
    );
    let output = lab.ch08(&[
        "run",
        "--rm",
        "--net",
        "none",
        "lab/app:v1",
        "cat",
        "hello.txt",
    ]);
    assert_eq!(stdout(&output), "changed file\n", "{}", stderr(&output));

    // --no-cache: every step built again.
    let fresh = lab.build(&["--no-cache", "-q", "-t", "lab/app:v2"]);
    let fresh_id = id_of(&fresh);
    assert_ne!(fresh_id, new_id);
    assert!(
        stderr(&fresh).is_empty(),
        "-q prints only the id: {}",
        stderr(&fresh)
    );
}

#[test]
fn a_failing_run_names_its_step_and_leaves_nothing_in_the_store() {
    let Some(lab) = Lab::new("fails") else {
        return;
    };
    lab.write(
        "Containerfile",
        "FROM lab/base:v1\nENV A=1\nRUN echo partial > /half && exit 3\nCMD [\"true\"]\n",
    );
    // The ENV step's image is a cache entry worth keeping: build it first.
    lab.write("Ok", "FROM lab/base:v1\nENV A=1\n");
    id_of(&lab.build(&["-f", "Ok"]));
    let before = lab.listing();
    let output = lab.build(&["-t", "lab/broken:v1"]);
    assert_build_failure(
        &output,
        "building at STEP 3/4: RUN echo partial > /half && exit 3: exited with 3",
    );
    assert_eq!(
        lab.listing(),
        before,
        "the failed step left something in the store"
    );
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let Some(lab) = Lab::new("bad") else {
        return;
    };
    let outside = Scratch::new("outside-bad");
    std::fs::write(outside.join("secret"), "host file\n").unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), lab.context.join("link")).unwrap();
    lab.write("ok.txt", "ok\n");
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "FROM lab/base:v1\n\n# fine so far\nCOPY ok.txt /\nFROBNICATE now\n",
            &["-t", "lab/bad:v1"],
            "Containerfile:5: unknown instruction FROBNICATE",
        ),
        (
            "FROM lab/base:v1\nCOPY ../outside-bad/secret /x\n",
            &["-t", "lab/bad:v1"],
            "COPY ../outside-bad/secret /x: ../outside-bad/secret: the path leaves the build context",
        ),
        (
            "FROM lab/base:v1\nCOPY link /x\n",
            &["-t", "lab/bad:v1"],
            "outside the build context",
        ),
        (
            "FROM lab/base:v1\n",
            &["-t", "Bad:Tag!"],
            "invalid reference \"Bad:Tag!\"",
        ),
        (
            "",
            &["-f", "Nothing", "-t", "lab/bad:v1"],
            "-f Nothing: no such file",
        ),
    ];
    for (containerfile, args, message) in cases {
        lab.write("Containerfile", containerfile);
        let before = lab.listing();
        let output = lab.build(args);
        assert_build_failure(&output, message);
        assert_eq!(lab.listing(), before, "{message}: the store changed");
    }
    std::fs::remove_file(lab.context.join("Containerfile")).unwrap();
    let output = lab.build(&["-t", "lab/bad:v1"]);
    assert_build_failure(&output, "no Containerfile or Dockerfile in .");
}

#[test]
fn commit_change_sets_the_new_images_command() {
    let Some(mut lab) = Lab::new("change") else {
        return;
    };
    let name = lab.name("c");
    let output = lab.ch08(&[
        "run",
        "--net",
        "none",
        "--name",
        &name,
        "lab/base:v1",
        "true",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = lab.ch08(&[
        "commit",
        "-c",
        r#"CMD ["/bin/echo","hi"]"#,
        &name,
        "lab/hi:v1",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = lab.ch08(&["run", "--rm", "--net", "none", "lab/hi:v1"]);
    assert_eq!(stdout(&output), "hi\n", "{}", stderr(&output));
    let output = lab.ch08(&["commit", "-c", "RUN rm -rf /", &name]);
    assert_clean_failure(&output, 125, "RUN cannot be a config change");
}

#[test]
fn a_build_session_for_the_book() {
    let Some(lab) = Lab::new("session") else {
        return;
    };
    lab.six_steps();
    let mut session = format!("$ cat Containerfile\n{SIX_STEPS}");
    // What each build says, and which steps it took from the cache.
    let build = |cached: [bool; 6]| {
        let output = lab.build(&["-t", "lab/app:v1"]);
        id_of(&output);
        let said: Vec<bool> = steps(&output).iter().map(|(_, c)| *c).collect();
        assert_eq!(said, cached, "{}", stderr(&output));
        transcript("ch08-images build -t lab/app:v1 .", &output, None)
    };
    session += &build([false; 6]);
    session += &build([false, true, true, true, true, true]);
    lab.write("app/hello.txt", "changed file\n");
    session += "$ echo 'changed file' > app/hello.txt\n";
    session += &build([false, true, false, false, false, false]);
    let session = mask(&session.replace(lab.context.to_str().unwrap(), "."));
    snapshot!("ch08_build", session);
}

/// Every file under `dir` (not following symlinks) whose content holds
/// `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file()
                && std::fs::read(entry.path())
                    .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                found.push(entry.path());
            }
        }
    }
    found
}

impl Lab {
    /// No file of the store holds the host file's content.
    fn assert_no_host_secret(&self) {
        let found = files_holding(&self.store, b"bfx-host-secret");
        assert!(found.is_empty(), "the host's file was read: {found:?}");
    }
}

#[test]
fn exec_form_run_words_are_the_command_never_options_of_run() {
    let Some(lab) = Lab::new("bfx-argv") else {
        return;
    };
    let outside = Scratch::new("bfx-argv-outside");
    std::fs::write(outside.join("marker"), "bfx-host-marker\n").unwrap();
    let volume = format!("{}:/host", outside.display());
    for words in [
        vec!["-v", &volume, "/bin/sh", "-c", "cat /host/marker"],
        vec![
            "--uid-map",
            "0:0:65536",
            "--gid-map",
            "0:0:65536",
            "/bin/sh",
            "-c",
            "cat /proc/self/uid_map; cat /host/marker",
        ],
    ] {
        let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
        lab.write(
            "Containerfile",
            &format!("FROM lab/base:v1\nRUN [{}]\n", quoted.join(", ")),
        );
        let before = lab.listing();
        let output = lab.build(&["-t", "lab/bfx-argv:v1"]);
        let err = stderr(&output);
        assert!(!err.contains("bfx-host-marker"), "a host mount: {err}");
        assert!(
            !err.contains("         0          0      65536"),
            "the host's ids: {err}"
        );
        // The first word is the command: not in the image, so run says
        // so, and the step fails as the command's own exit 127.
        assert_eq!(code(&output), 1, "{err}");
        assert!(
            err.contains(&format!("command {} not found", words[0])),
            "{err}"
        );
        assert!(err.contains("exited with 127"), "{err}");
        assert_eq!(stdout(&output), "", "stdout must stay clean");
        assert_eq!(lab.listing(), before, "{words:?}: the store changed");
    }
}

#[test]
fn a_copy_source_is_read_where_it_resolves_not_through_a_second_symlink() {
    let Some(lab) = Lab::new("bfx-second-link") else {
        return;
    };
    let outside = Scratch::new("bfx-second-link-outside");
    std::fs::write(outside.join("secret"), "bfx-host-secret\n").unwrap();
    lab.write("sub/real.txt", "inside\n");
    std::os::unix::fs::symlink("sub/real.txt", lab.context.join("f")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), lab.context.join("sub/f")).unwrap();
    lab.write("Containerfile", "FROM lab/base:v1\nCOPY f /got\n");
    id_of(&lab.build(&["-t", "lab/bfx-link:v1"]));
    let output = lab.ch08(&[
        "run",
        "--rm",
        "--net",
        "none",
        "lab/bfx-link:v1",
        "cat",
        "/got",
    ]);
    assert_eq!(stdout(&output), "inside\n", "{}", stderr(&output));
    lab.assert_no_host_secret();
}

#[test]
fn a_file_swapped_for_a_symlink_during_a_build_is_never_read_through_it() {
    let Some(lab) = Lab::new("bfx-swap") else {
        return;
    };
    let outside = Scratch::new("bfx-swap-outside");
    // As long as the file, so that no size check catches the swap.
    std::fs::write(outside.join("secret"), "bfx-host-secret\n").unwrap();
    lab.write("dir/f", "bfx-plain-file!\n");
    lab.write("top", "bfx-plain-file!\n");
    std::os::unix::fs::symlink(outside.join("secret"), lab.context.join("dir/s")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), lab.context.join("s")).unwrap();
    lab.write(".dockerignore", "s\ndir/s\n");
    lab.write(
        "Containerfile",
        "FROM lab/base:v1\nCOPY top /top\nCOPY dir /d/\n",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let context = lab.context.to_path_buf();
        std::thread::spawn(move || {
            use std::ffi::CString;
            use std::os::unix::ffi::OsStrExt;
            let path = |p: &str| CString::new(context.join(p).as_os_str().as_bytes()).unwrap();
            let pairs = [(path("dir/f"), path("dir/s")), (path("top"), path("s"))];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (a, b) in &pairs {
                    // SAFETY: two NUL-terminated paths.
                    unsafe {
                        libc::renameat2(
                            libc::AT_FDCWD,
                            a.as_ptr(),
                            libc::AT_FDCWD,
                            b.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                }
            }
        })
    };
    for _ in 0..12 {
        let _ = lab.build(&["--no-cache", "-q"]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    lab.assert_no_host_secret();
}

#[test]
fn the_containerfile_and_ignore_file_are_not_read_through_a_symlink_out() {
    let Some(lab) = Lab::new("bfx-cfile") else {
        return;
    };
    let outside = Scratch::new("bfx-cfile-outside");
    std::fs::write(outside.join("secret"), "BFXSECRETLINE x\n").unwrap();
    std::fs::write(outside.join("ignore"), "ok.txt\n").unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), lab.context.join("Containerfile")).unwrap();
    lab.write("ok.txt", "ok\n");
    let output = lab.build(&["-t", "lab/bfx-cfile:v1"]);
    assert!(
        !stderr(&output).contains("BFXSECRETLINE"),
        "{}",
        stderr(&output)
    );
    assert_build_failure(&output, "no Containerfile or Dockerfile in .");

    std::fs::remove_file(lab.context.join("Containerfile")).unwrap();
    lab.write("Containerfile", "FROM lab/base:v1\nCOPY ok.txt /\n");
    std::os::unix::fs::symlink(outside.join("ignore"), lab.context.join(".dockerignore")).unwrap();
    id_of(&lab.build(&["-t", "lab/bfx-cfile:v1"]));
}
