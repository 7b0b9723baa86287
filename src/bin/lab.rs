//! lab: the container-lab driver (build root filesystems, run the demo).

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
        LabCommand::Demo { step } => demo(step),
    })
}

fn demo(step: bool) -> Result<i32, LabError> {
    let rootfs_dir = rootfs::default_path();
    if !rootfs_dir.join("usr/local/bin/lab-breakout").exists() {
        banner(&format!(
            "building the default rootfs in {}",
            rootfs_dir.display()
        ));
        rootfs::build(Variant::Host, &rootfs_dir)?;
    }
    let marker_dir =
        std::env::temp_dir().join(format!("container-lab-demo-{}", std::process::id()));
    std::fs::create_dir_all(&marker_dir).map_err(|e| io_error("mkdir", &marker_dir, e))?;
    let marker = marker_dir.join("host-secret.txt");
    std::fs::write(
        &marker,
        "a file that lives on the host, outside the rootfs\n",
    )
    .map_err(|e| io_error("write", &marker, e))?;
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
            .map_err(|e| io_error("execve", &rootfs::sibling(chapter), e))?;
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

fn io_error(syscall: &'static str, path: &Path, error: std::io::Error) -> LabError {
    LabError::StepFailed {
        syscall,
        target: path.display().to_string(),
        errno: nix::errno::Errno::from_raw(error.raw_os_error().unwrap_or(0)),
    }
}
