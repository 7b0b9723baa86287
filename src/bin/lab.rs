//! lab: the container-lab driver (build root filesystems, run the demo,
//! make OCI bundles).

use clap::{Parser, Subcommand};
use colored::Colorize;
use container_lab::error::LabError;
use container_lab::rootfs::{self, Variant};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The container-lab driver: everything that is not a chapter.
#[derive(Parser, Debug)]
#[command(
    name = "lab",
    version,
    after_help = "Chapters are separate binaries: ch00-process, ch01-chroot, ..."
)]
struct Cli {
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Subcommand, Debug)]
enum LabCommand {
    /// Build a root filesystem (default: the lab's default rootfs from the host's own tools)
    #[command(
        after_help = "The rootfs scripts live in rootfs-scripts/ and can be run by hand too."
    )]
    Rootfs {
        /// Which kind of root filesystem to build
        #[arg(long, value_enum, default_value = "host")]
        variant: Variant,
        /// Where to build it (default: $CONTAINER_LAB_ROOTFS or /var/lib/container-lab/rootfs)
        dir: Option<PathBuf>,
    },
    /// Check this machine before a class: root, kernel, cgroups, user namespaces, tools, rootfs
    #[command(
        long_about = "Check this machine before a class: root, kernel, cgroup layout (v2, v1 or \
            hybrid, and which controllers are where), overlayfs, user namespace restrictions, \
            the tools later chapters use, and the default rootfs. Every warning says how to fix \
            it. Needs no root."
    )]
    Doctor,
    /// Remove what interrupted lab runs left behind (mounts, loop devices, bait, scratch dirs)
    #[command(
        long_about = "Remove what interrupted lab runs left behind. A run cleans up after itself \
            even on error and Ctrl-C; only a SIGKILL or a crash leaves things behind. clean removes \
            only things with the lab's own names (.lab-probe-*, .lab-breakout, \
            /run/container-lab/tour-PID-*, lab anatomy's anatomy-PID), and only when the run \
            that made them has ended."
    )]
    Clean {
        /// Say what would be removed, remove nothing
        #[arg(long)]
        dry_run: bool,
        /// Also look in this rootfs (the default rootfs is always looked at; repeatable)
        #[arg(long, value_name = "DIR")]
        rootfs: Vec<PathBuf>,
    },
    /// Run lab-probe in every chapter and print the isolation scorecard
    #[command(
        long_about = "Run lab-probe in every chapter and print the isolation scorecard: one row per \
            way of reaching the host, one column per chapter.\n\n\
            The tour first moves itself into new mount, UTS, IPC and network namespaces that \
            stand in for the host, so a chapter that leaks (changes the hostname, leaks a mount) \
            leaks into the stand-in, not into your machine. For each chapter it plants bait (a \
            secret file, a process, IPC objects, a listener), runs the probe, and confirms every \
            claim from the host side.",
        after_help = "Examples:\n  sudo lab tour\n  sudo lab tour --chapters 00,01 --json"
    )]
    Tour {
        /// Print the matrix as JSON
        #[arg(long)]
        json: bool,
        /// Only these chapters (comma-separated numbers: 00,01)
        #[arg(long, value_delimiter = ',', value_name = "NN,NN")]
        chapters: Vec<String>,
        /// The root filesystem to run the chapters on (default: the lab's, built if missing)
        #[arg(long, value_name = "DIR")]
        rootfs: Option<PathBuf>,
        /// Also write the book's scorecard tables (in English, and in Korean under
        /// ko/) and its heat map (scorecard.svg) into DIR (book/src/generated)
        #[arg(long, value_name = "DIR")]
        book: Option<PathBuf>,
    },
    /// Time every chapter starting /bin/true, against unshare, chroot, bwrap and runc
    #[command(
        long_about = "Time every chapter starting a container that runs /bin/true and returning \
            its exit code, against the tools that do the same job (chroot, unshare, bwrap, runc \
            run; those not installed are skipped and named). Prints min, median and p95 wall \
            time and peak RSS per subject, what each chapter's idea adds, and a CPU-bound and a \
            syscall-heavy loop timed inside ch03 and on the host, and chapter 07's lifecycle: \
            `run -d` until it returns, `exec` of /bin/true into a running container and `stop` \
            of one that ends on SIGTERM, beside `runc run -d` and `runc exec`, and the memory \
            (PSS) of its monitor beside conmon's when conmon is installed; and chapter 08's \
            images: `load` of a five-layer docker-archive the bench makes (100+ MiB; a few \
            with --quick) beside GNU `tar -x` of its layers, `pull` of it from a docker-registry \
            on 127.0.0.1 beside `skopeo copy` into a directory (when both are installed), \
            `commit` of 10 MiB changed on it beside the same change on its first layer alone, \
            and of 1 MiB beside an `import` of the whole tree, an unchanged rebuild of a \
            six-step Containerfile beside `buildah bud --layers` (when installed), and \
            `run --rm` of it beside ch07 on the plain rootfs, each with issue 16's or 17's \
            goal; and chapter 09's seccomp filter: getppid(2) per call inside ch09 beside ch08 \
            (and ch09 seccomp=unconfined), the same in forked children of the bench under no \
            filter, a one-instruction filter and the default one, personality(2) whose rule \
            reads its argument, and the time to compile and to load the default profile, with \
            issue 18's goals; and chapter 10's OCI runtime: `run`, and create + start + wait + \
            delete, beside runc on one bundle, and `podman run --rm` with each as podman's \
            runtime (when podman is installed), with issue 19's goals. --only runs some of \
            these parts. Runs \
            inside a stand-in host network namespace, like the tour.",
        after_help = "Examples:\n  sudo lab bench\n  sudo lab bench --quick --json\n  sudo lab bench --only oci,startup --runs 5\n  sudo lab bench --book book/src/generated"
    )]
    Bench {
        /// Measured runs per subject
        #[arg(long, default_value_t = 50)]
        runs: usize,
        /// Unmeasured runs first, per subject
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// A few runs and small workloads: checks that everything works, measures little
        #[arg(long)]
        quick: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
        /// The root filesystem to run the chapters on (default: the lab's, built if missing)
        #[arg(long, value_name = "DIR")]
        rootfs: Option<PathBuf>,
        /// Also write the book's table and chart (bench.md, bench.svg) into DIR
        #[arg(long, value_name = "DIR")]
        book: Option<PathBuf>,
        /// Only these parts of the bench (comma-separated), the others' tables left empty
        #[arg(long, value_enum, value_delimiter = ',', value_name = "SECTION,...")]
        only: Vec<container_lab::lab::bench::Section>,
    },
    /// Start a chapter 09 container, read its layers from the host, remove it
    #[command(
        long_about = "Start a real chapter 09 container and read what it is made of from the host \
            side, layer by layer: its process, its root filesystem, its namespaces, its cgroup.\n\n\
            It imports the rootfs as an image into an image store of its own (under \
            /run/container-lab/anatomy-PID), and runs it as a reader of chapter 09 would: \
            `ch09-hardening run -d --name anatomy-PID --memory 64M --pids 64 --cpus 0.5 --net none \
            IMAGE /bin/sleep 86400`. `ch09-hardening inspect` gives the container's host PID and \
            cgroup directories. Then it reads, for the container's command: /proc/PID/ns/* \
            against its own (which namespaces are new), uid_map and gid_map, mountinfo (the \
            overlay at /, its layers, the other mounts, the masked and read-only paths), status \
            (capabilities, Seccomp, NoNewPrivs), and the budgets in the cgroup files (memory, \
            pids, cpu; cgroup v1 or v2). Last it removes the container (`rm -f`) and the image \
            store, also when something fails or Ctrl-C stops it.\n\n\
            Without --book it prints the facts; with --book it writes them as JSON and as a \
            picture for the book. Only facts that are the same from one run to the next are \
            kept: no host PIDs, inode numbers or scratch paths. Needs root.",
        after_help = "Examples:\n  sudo lab anatomy\n  sudo lab anatomy --book book/src/generated"
    )]
    Anatomy {
        /// The root filesystem to make the image of (default: the lab's, built if missing)
        #[arg(long, value_name = "DIR")]
        rootfs: Option<PathBuf>,
        /// Write ch09-anatomy.json (the facts) and ch09-anatomy.svg (the picture) into DIR
        #[arg(long, value_name = "DIR")]
        book: Option<PathBuf>,
    },
    /// Make an OCI bundle (rootfs/ and config.json) from an image, for runc or ch10-oci
    #[command(
        long_about = "Make an OCI bundle from an image of the lab's store.\n\n\
            A bundle is what the OCI runtime spec hands a runtime: a directory holding the \
            container's root filesystem (rootfs/) and a config.json that says how to run it: \
            the process, its user, environment and capabilities, the namespaces, mounts, \
            masked paths and seccomp filter. Chapters 08 and 09 stacked an image's layers with \
            overlayfs and took the rest from flags; a bundle writes both down, so any OCI \
            runtime runs the same container.\n\n\
            rootfs/ is the image's layers flattened into one directory, deletions and opaque \
            directories applied, owners, modes, links and xattrs kept. config.json is the \
            default spec (`ch10-oci spec`: runc's shape with chapter 09's capabilities, masked \
            paths and seccomp profile) with the image's Entrypoint and Cmd, Env, WorkingDir \
            and User (resolved to numbers in the image's own /etc/passwd) put in. The image \
            must have an Entrypoint or a Cmd (`import --cmd`, a Containerfile's CMD): a \
            bundle's process is not optional.\n\n\
            DIR must be new or empty: nothing in it is written over, and a bundle that fails \
            half-way (or is interrupted) is removed again. Images are looked up in the store \
            of chapter 08 ($CONTAINER_LAB_STORAGE, else /var/lib/container-lab/storage for \
            root).",
        after_help = "Examples:\n  \
            sudo ch08-images import ./rootfs lab/base:v1 --cmd 'echo hello'\n  \
            sudo lab bundle lab/base:v1 ./mybundle\n  \
            sudo runc run -b ./mybundle demo        # runc runs it\n  \
            sudo ch10-oci run -b ./mybundle demo    # and so does chapter 10\n  \
            lab bundle --rootless -t lab/base:v1 ./mine && runc --root /tmp/runc run -b ./mine demo"
    )]
    Bundle(container_lab::oci::bundle::BundleArgs),
    /// Show what the chapters so far do, narrated: ch00, ch01, and the chroot breakout
    Demo {
        /// Pause before every step (for a live class)
        #[arg(long)]
        step: bool,
    },
}

fn main() {
    let cli: Cli = container_lab::cli::parse();
    container_lab::run(|| match cli.command {
        LabCommand::Rootfs { variant, dir } => {
            let dir = dir.unwrap_or_else(rootfs::default_path);
            rootfs::build(variant, &dir)?;
            println!("{} rootfs in {}", "built".green().bold(), dir.display());
            Ok(0)
        }
        LabCommand::Bundle(args) => container_lab::oci::bundle::bundle_verb(&args),
        LabCommand::Demo { step } => demo(step),
        LabCommand::Doctor => doctor(),
        LabCommand::Bench {
            runs,
            warmup,
            quick,
            json,
            rootfs,
            book,
            only,
        } => bench(
            &BenchOptions {
                runs: if quick { 3 } else { runs },
                warmup: if quick { 1 } else { warmup },
                quick,
                json,
                only,
            },
            rootfs,
            book,
        ),
        LabCommand::Clean { dry_run, rootfs } => clean(dry_run, rootfs),
        LabCommand::Anatomy { rootfs, book } => anatomy(rootfs, book),
        LabCommand::Tour {
            json,
            chapters,
            rootfs,
            book,
        } => tour(json, &chapters, rootfs, book),
    })
}

/// The default rootfs, built first if it is missing or lacks the lab's tools.
fn default_rootfs_ready() -> Result<PathBuf, LabError> {
    let dir = rootfs::default_path();
    let complete = rootfs::IN_CONTAINER_TOOLS
        .iter()
        .all(|tool| dir.join("usr/local/bin").join(tool).exists());
    if complete {
        rootfs::install_tools(&dir)?;
    } else {
        banner(&format!("building the default rootfs in {}", dir.display()));
        rootfs::build(Variant::Host, &dir)?;
    }
    Ok(dir)
}

/// How `lab bench` measures: rounds, workload sizes, the sections run,
/// the report's form.
struct BenchOptions {
    runs: usize,
    warmup: usize,
    quick: bool,
    json: bool,
    only: Vec<container_lab::lab::bench::Section>,
}

fn bench(
    options: &BenchOptions,
    rootfs_dir: Option<PathBuf>,
    book: Option<PathBuf>,
) -> Result<i32, LabError> {
    use container_lab::lab::bench::{self, Section};
    let &BenchOptions {
        runs,
        warmup,
        quick,
        json,
        ..
    } = options;
    if runs == 0 {
        return Err(LabError::Usage {
            message: "--runs must be at least 1".into(),
        });
    }
    // The book's table is the whole report, measured in one run.
    if book.is_some() && !options.only.is_empty() {
        return Err(LabError::Usage {
            message: "--book writes the whole report: drop --only".into(),
        });
    }
    let wants = |section| bench::selected(&options.only, section);
    let rootfs_dir = chosen_rootfs(rootfs_dir)?;
    let _stand_in = container_lab::lab::tour::enter_stand_in_host()?;
    let bundle_dir = Path::new(container_lab::lab::tour::BAIT_ROOT)
        .join(format!("bench-{}", std::process::id()));
    let bundle = bench::runc_bundle(&rootfs_dir, &bundle_dir, &["/bin/true"]);
    let (subjects, skipped) = match wants(Section::Startup) {
        true => bench::subjects(&rootfs_dir, bundle.as_deref()),
        false => (Vec::new(), Vec::new()),
    };
    let progress = |round: usize| {
        if round % 10 == 9 {
            eprintln!("{}", format!("  round {} of {runs}", round + 1).dimmed());
        }
    };
    let say = |line: &str| eprintln!("{}", line.dimmed());
    let indented = |line: &str| eprintln!("{}", format!("  {line}").dimmed());
    // The bundles, the images' archive and stores: removed however the
    // measuring ends.
    let measured = (|| {
        let mut timings = Vec::new();
        if wants(Section::Startup) {
            say(&format!(
                "timing {} subjects in {runs} rounds ...",
                subjects.len()
            ));
            timings = bench::measure_all(&subjects, warmup, runs, progress)?;
        }
        let mut lifecycle = bench::Comparison::default();
        if wants(Section::Lifecycle) {
            say("timing ch07's run -d, exec and stop, against runc ...");
            lifecycle = bench::lifecycle(
                &rootfs_dir,
                &bundle_dir.join("lifecycle"),
                warmup,
                runs,
                progress,
            )?;
        }
        let mut images = bench::Comparison::default();
        if wants(Section::Images) {
            say("timing ch08's load, pull and run against tar, skopeo and ch07 ...");
            images = bench::images(
                &bench::ImageBenchPlan {
                    rootfs: &rootfs_dir,
                    work: &bundle_dir.join("images"),
                    // Layers 2-5; layer 1 is the rootfs without the lab's tools.
                    generated_layer_bytes: if quick { 1 << 20 } else { 25 << 20 },
                    warmup,
                    runs,
                },
                &indented,
            )?;
        }
        let mut hardening = bench::Comparison::default();
        if wants(Section::Hardening) {
            say("timing ch09's seccomp filter: per call against ch08, compile and load ...");
            let (calls, repeat) = if quick { (100_000, 3) } else { (2_000_000, 9) };
            hardening = bench::hardening(
                &bench::HardeningBenchPlan {
                    rootfs: &rootfs_dir,
                    work: &bundle_dir.join("hardening"),
                    calls,
                    repeat,
                    runs,
                },
                &indented,
            )?;
        }
        let mut oci = bench::Comparison::default();
        if wants(Section::Oci) {
            say("timing ch10-oci against runc, alone and under podman ...");
            oci = bench::oci(
                &bench::OciBenchPlan {
                    rootfs: &rootfs_dir,
                    work: &bundle_dir.join("oci"),
                    warmup,
                    runs,
                },
                &indented,
            )?;
        }
        Ok::<_, LabError>((timings, lifecycle, images, hardening, oci))
    })();
    let _ = std::fs::remove_dir_all(&bundle_dir);
    let (timings, lifecycle, images, hardening, oci) = measured?;
    let mut throughput = Vec::new();
    if wants(Section::Workloads) {
        say("timing the workloads inside ch03 and on the host ...");
        let (cpu, syscalls, repeat) = if quick {
            (1_000_000, 10_000, 1)
        } else {
            (300_000_000, 2_000_000, 9)
        };
        throughput = bench::throughput(&rootfs_dir, cpu, syscalls, repeat)?;
    }
    let mut network = Vec::new();
    if wants(Section::Network) {
        say("timing TCP into ch04: bridge and published port vs --net host ...");
        let (mib, tries) = if quick { (8, 1) } else { (256, 3) };
        network = bench::network_throughput(&rootfs_dir, mib, tries)?;
    }
    let report = bench::Report {
        timings,
        network,
        skipped,
        throughput,
        lifecycle,
        images,
        hardening,
        oci,
        kernel: container_lab::hostinfo::kernel_release(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{}", report.render());
    }
    if let Some(dir) = book {
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io("mkdir", dir.display(), e))?;
        for (name, text) in [("bench.md", report.markdown()), ("bench.svg", report.svg())] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| LabError::io("write", path.display(), e))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(0)
}

/// The rootfs given (with this build's tools put in), or the default one.
fn chosen_rootfs(given: Option<PathBuf>) -> Result<PathBuf, LabError> {
    match given {
        Some(dir) => {
            let dir = rootfs::locate(Some(&dir))?;
            rootfs::install_tools(&dir)?;
            Ok(dir)
        }
        None => default_rootfs_ready(),
    }
}

fn tour(
    json: bool,
    selected: &[String],
    rootfs_dir: Option<PathBuf>,
    book: Option<PathBuf>,
) -> Result<i32, LabError> {
    use container_lab::lab::tour;
    let chapters = tour::chapters(selected)?;
    let rootfs_dir = chosen_rootfs(rootfs_dir)?;
    let matrix = tour::tour(&chapters, &rootfs_dir, |line| {
        eprintln!("{}", line.dimmed())
    })?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&matrix).expect("matrix serialises")
        );
    } else {
        print!("{}", matrix.render());
    }
    if let Some(dir) = book {
        write_book_tables(&matrix, &dir)?;
    }
    let regressions = matrix.regressions();
    for regression in &regressions {
        eprintln!("{} {regression}", "regression:".red().bold());
    }
    Ok(if regressions.is_empty() { 0 } else { 1 })
}

/// The scorecard page's table and its heat map, and each chapter's column;
/// the tables again in Korean under `ko/`, for the Korean edition.
fn write_book_tables(
    matrix: &container_lab::lab::scorecard::Matrix,
    dir: &Path,
) -> Result<(), LabError> {
    use container_lab::lab::scorecard::Language;
    let mut files = vec![(dir.join("scorecard.svg"), matrix.heat_map())];
    for (language, dir) in [
        (Language::English, dir.to_path_buf()),
        (Language::Korean, dir.join("ko")),
    ] {
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io("mkdir", dir.display(), e))?;
        files.push((dir.join("scorecard.md"), matrix.markdown_in(language)));
        for column in &matrix.columns {
            let table = matrix
                .markdown_diff_in(&column.chapter, language)
                .expect("column exists");
            files.push((
                dir.join(format!("scorecard-ch{}.md", column.chapter)),
                table,
            ));
        }
    }
    for (path, text) in files {
        std::fs::write(&path, text).map_err(|e| LabError::io("write", path.display(), e))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// A chapter 09 container's layers, read from a real one: printed, or
/// written for the book.
fn anatomy(rootfs_dir: Option<PathBuf>, book: Option<PathBuf>) -> Result<i32, LabError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(LabError::Refused {
            message: "lab anatomy needs root: it runs a chapter 09 container with cgroup budgets"
                .into(),
            hint: "run it with sudo".into(),
        });
    }
    let rootfs_dir = chosen_rootfs(rootfs_dir)?;
    let anatomy =
        container_lab::lab::anatomy::dissect(&rootfs_dir, |line| eprintln!("{}", line.dimmed()))?;
    let Some(dir) = book else {
        print!("{}", anatomy.render());
        return Ok(0);
    };
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io("mkdir", dir.display(), e))?;
    let json = serde_json::to_string_pretty(&anatomy).expect("the anatomy serialises") + "\n";
    for (name, text) in [
        ("ch09-anatomy.json", json),
        ("ch09-anatomy.svg", anatomy.svg()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| LabError::io("write", path.display(), e))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(0)
}

fn clean(dry_run: bool, mut rootfs_dirs: Vec<PathBuf>) -> Result<i32, LabError> {
    use container_lab::lab::clean;
    rootfs_dirs.push(rootfs::default_path());
    let leftovers = clean::find(&rootfs_dirs, Path::new(container_lab::lab::tour::BAIT_ROOT));
    if leftovers.is_empty() {
        println!("nothing to clean");
        return Ok(0);
    }
    let mut failed = 0;
    for leftover in &leftovers {
        if dry_run {
            println!("would remove {leftover}");
            continue;
        }
        match clean::remove(leftover) {
            Ok(()) => println!("{} {leftover}", "removed".green()),
            Err(why) => {
                failed += 1;
                eprintln!("{} {leftover}: {why}", "could not remove".red());
            }
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn doctor() -> Result<i32, LabError> {
    use std::io::IsTerminal;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    colored::control::set_override(color);
    let passed = container_lab::lab::doctor::run(&mut std::io::stdout().lock())
        .map_err(|e| LabError::io("write", "stdout", e))?;
    Ok(if passed { 0 } else { 1 })
}

fn demo(step: bool) -> Result<i32, LabError> {
    let rootfs_dir = default_rootfs_ready()?;
    let marker_dir =
        std::env::temp_dir().join(format!("container-lab-demo-{}", std::process::id()));
    std::fs::create_dir_all(&marker_dir)
        .map_err(|e| LabError::io("mkdir", marker_dir.display(), e))?;
    let marker = marker_dir.join("host-secret.txt");
    std::fs::write(
        &marker,
        "a file that lives on the host, outside the rootfs\n",
    )
    .map_err(|e| LabError::io("write", marker.display(), e))?;
    let marker_text = marker.display().to_string();
    let rootfs_text = rootfs_dir.display().to_string();
    let narration = if step { "--step" } else { "--explain" };

    let runs: [(&str, &str, Vec<&str>); 4] = [
        (
            "ch00: a plain process shares everything with the host",
            "ch00-process",
            vec![
                narration,
                "/bin/sh",
                "-c",
                "echo \"pid $$ on $(hostname), uid $(id -u), / holds:\" /*",
            ],
        ),
        (
            "ch01: chroot gives the command its own / ...",
            "ch01-chroot",
            vec![
                narration,
                &rootfs_text,
                "/bin/sh",
                "-c",
                "echo / holds: /*; cat /etc/container-lab-rootfs",
            ],
        ),
        (
            "... so the host's file is out of sight by its path ...",
            "ch01-chroot",
            vec![&rootfs_text, "/bin/cat", &marker_text],
        ),
        (
            "... but root climbs out: the classic breakout",
            "ch01-chroot",
            vec![
                &rootfs_text,
                "/usr/local/bin/lab-breakout",
                "/bin/cat",
                &marker_text,
            ],
        ),
    ];
    for (title, chapter, args) in runs {
        banner(title);
        eprintln!(
            "{} {} {}",
            "$".dimmed(),
            chapter,
            container_lab::shell_words(&args)
        );
        let status = Command::new(rootfs::sibling(chapter))
            .args(&args)
            .status()
            .map_err(|e| LabError::io("execve", rootfs::sibling(chapter).display(), e))?;
        eprintln!(
            "{}",
            format!("(exit status {})", status.code().unwrap_or(-1)).dimmed()
        );
    }
    let _ = std::fs::remove_dir_all(&marker_dir);
    Ok(0)
}

fn banner(text: &str) {
    eprintln!("\n{}", format!("== {text}").bold().green());
}
