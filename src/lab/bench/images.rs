//! Chapter 08's images, measured beside the tools that do the same job
//! (issue 16's goals): `load` of a five-layer docker-archive beside GNU
//! `tar -x` of its layers, `pull` from a registry on 127.0.0.1 beside
//! `skopeo copy` into a directory, and `run --rm` of the image beside
//! chapter 07's `run --rm` of the plain rootfs.
//!
//! The image is made here, with no network: layer 1 is the lab's rootfs,
//! layers 2-5 are many files of mixed sizes, so that unpacking does the
//! file-creation work a real image asks for.

use super::Scratch;
use super::{
    ComparedRow, Comparison, Goal, argv, built_chapter, compared_row, millis, run_once,
    run_once_with, with_goal, words,
};
use crate::error::LabError;
use crate::image::digest::{Digest, HashingWriter};
use crate::image::spec::{History, ImageConfig, Platform, RootFs, RunConfig};
use crate::image::store::STORAGE_ENV;
use crate::runtime::state::remove_tree;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The image's name, in the archive and in the registry.
const REPOSITORY: &str = "bench/five";
const TAG: &str = "bench/five:v1";

/// The lab's own tools in a rootfs (`lab-probe`, `lab-breakout`): debug
/// builds weigh 100 MiB, far more than the rest of the rootfs, and no
/// base image carries them; layer 1 leaves them out.
const LAB_TOOLS: &str = "usr/local/bin";

/// Every entry of the generated layers is dated this (2026-12-01), so the
/// archive is the same from one bench to the next.
const MTIME: u64 = 1_796_083_200;

/// What the image bench measures with: a rootfs, the generated layers'
/// size, and how many rounds.
pub struct ImageBenchPlan<'a> {
    pub rootfs: &'a Path,
    /// Where the archive, the stores and the peers' copies go (removed
    /// when done).
    pub work: &'a Path,
    /// Bytes of files in each of layers 2-5.
    pub generated_layer_bytes: u64,
    pub warmup: usize,
    pub runs: usize,
}

/// The bench's image: its layers' tars (bottom first) and the
/// docker-archive that holds them.
struct BenchImage {
    layers: Vec<PathBuf>,
    archive: PathBuf,
    layer_bytes: u64,
}

/// A xorshift64 generator: the generated layers' sizes and bytes, the
/// same on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A size between `low` and `high`, log-uniform: many small files, a
    /// few large ones, as in a distribution's tree.
    fn size(&mut self, low: u64, high: u64) -> u64 {
        let fraction = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (low as f64 * (high as f64 / low as f64).powf(fraction)) as u64
    }

    /// File content that compresses about 2:1, as binaries and text do:
    /// 4 KiB blocks of noise and of repeated text, at random.
    fn fill(&mut self, content: &mut [u8], text: &[u8]) {
        for block in content.chunks_mut(4096) {
            if self.next() & 1 == 0 {
                for (i, byte) in block.iter_mut().enumerate() {
                    *byte = text[i % text.len()];
                }
            } else {
                for word in block.chunks_mut(8) {
                    let bytes = self.next().to_le_bytes();
                    word.copy_from_slice(&bytes[..word.len()]);
                }
            }
        }
    }
}

type LayerBuilder = tar::Builder<HashingWriter<std::io::BufWriter<std::fs::File>>>;

fn io_error(syscall: &'static str, path: &Path) -> impl Fn(std::io::Error) -> LabError {
    let path = path.display().to_string();
    move |e| LabError::io(syscall, &path, e)
}

/// Write one layer tar at `path` with `fill`; its digest (an uncompressed
/// layer's diffID and blob digest alike).
fn write_layer(
    path: &Path,
    fill: impl FnOnce(&mut LayerBuilder) -> std::io::Result<()>,
) -> Result<Digest, LabError> {
    let file = std::fs::File::create(path).map_err(io_error("create", path))?;
    let mut builder = tar::Builder::new(HashingWriter::new(std::io::BufWriter::new(file)));
    builder.follow_symlinks(false);
    fill(&mut builder).map_err(io_error("write", path))?;
    let mut writer = builder.into_inner().map_err(io_error("write", path))?;
    writer.flush().map_err(io_error("write", path))?;
    Ok(writer.finish().1)
}

/// Append the tree under `root`/`relative` (not following symlinks), in
/// name order, without the lab's tools.
fn append_tree(builder: &mut LayerBuilder, root: &Path, relative: &Path) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(root.join(relative))?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = relative.join(entry.file_name());
        if name == Path::new(LAB_TOOLS) {
            continue;
        }
        builder.append_path_with_name(entry.path(), &name)?;
        if entry.file_type()?.is_dir() {
            append_tree(builder, root, &name)?;
        }
    }
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Layer `number` of the generated ones: `bytes` of files under
/// `/bench/layerN/`, spread over 16 directories.
fn append_files(
    builder: &mut LayerBuilder,
    number: usize,
    bytes: u64,
    noise: &mut Noise,
) -> std::io::Result<()> {
    let top = format!("bench/layer{number}");
    let dir = |path: &str| {
        (
            header(tar::EntryType::Directory, 0o755, 0),
            path.to_string(),
        )
    };
    let mut dirs = vec![dir("bench"), dir(&top)];
    dirs.extend((0..16).map(|d| dir(&format!("{top}/d{d:02}"))));
    for (mut header, path) in dirs {
        builder.append_data(&mut header, path, std::io::empty())?;
    }
    let (mut written, mut index) = (0, 0);
    while written < bytes {
        let size = noise.size(64, 256 << 10).min(bytes - written).max(1);
        let text = format!("container-lab bench, layer {number}, file {index}\n");
        let mut content = vec![0u8; size as usize];
        noise.fill(&mut content, text.as_bytes());
        let path = format!("{top}/d{:02}/f{index:05}", index % 16);
        let mut header = header(tar::EntryType::Regular, 0o644, size);
        builder.append_data(&mut header, path, &content[..])?;
        written += size;
        index += 1;
    }
    Ok(())
}

/// Make the five layers and their docker-archive in `work`.
fn make_image(rootfs: &Path, work: &Path, generated: u64) -> Result<BenchImage, LabError> {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for number in 1..=5 {
        let path = work.join(format!("layer-{number}.tar"));
        let digest = match number {
            1 => write_layer(&path, |builder| append_tree(builder, rootfs, Path::new("")))?,
            _ => write_layer(&path, |builder| {
                append_files(builder, number, generated, &mut noise)
            })?,
        };
        layers.push(path);
        diff_ids.push(digest);
    }
    let layer_bytes = layers
        .iter()
        .map(|path| std::fs::metadata(path).map_or(0, |m| m.len()))
        .sum();
    let created = "2026-12-01T00:00:00Z".to_string();
    let platform = Platform::host();
    let config = ImageConfig {
        created: Some(created.clone()),
        architecture: platform.architecture,
        os: platform.os,
        config: Some(RunConfig {
            env: Some(vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ]),
            ..RunConfig::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: diff_ids.clone(),
        },
        history: (1..=5)
            .map(|number| History {
                created: Some(created.clone()),
                created_by: Some(format!("lab bench: layer {number}")),
                comment: None,
                empty_layer: false,
            })
            .collect(),
        ..ImageConfig::default()
    };
    let config = serde_json::to_vec(&config).expect("a config serialises");
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let layer_names: Vec<String> = diff_ids
        .iter()
        .map(|d| format!("{}.tar", d.hex()))
        .collect();
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [TAG],
        "Layers": layer_names,
    }])
    .to_string();

    // docker save's layout: the config and one tar per layer, each named
    // by its digest, and manifest.json.
    let archive = work.join("five-layers.tar");
    let file = std::fs::File::create(&archive).map_err(io_error("create", &archive))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    let written = (|| {
        for (name, bytes) in [
            ("manifest.json", manifest.as_bytes()),
            (config_name.as_str(), &config[..]),
        ] {
            let mut header = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
            builder.append_data(&mut header, name, bytes)?;
        }
        for (path, name) in layers.iter().zip(&layer_names) {
            builder.append_path_with_name(path, name)?;
        }
        builder.into_inner()?.flush()
    })();
    written.map_err(io_error("write", &archive))?;
    Ok(BenchImage {
        layers,
        archive,
        layer_bytes,
    })
}

/// A fresh, empty directory for one timed run (an image store, a peer's
/// destination); removed when the run is done.
fn fresh(work: &Path, name: &str) -> Result<Scratch, LabError> {
    let path = work.join(name);
    remove_tree(&path)?;
    std::fs::create_dir_all(&path).map_err(io_error("mkdir", &path))?;
    Ok(Scratch(path))
}

/// Run `argv` with a fresh image store of its own; its wall time in ms.
fn with_fresh_store(work: &Path, argv: &[OsString]) -> Result<f64, LabError> {
    let store = fresh(work, "store")?;
    Ok(millis(run_once_with(argv, &[(STORAGE_ENV, &store.0)])?))
}

/// `load -i` of the archive into a fresh store.
fn time_load(work: &Path, chapter: &Path, image: &BenchImage) -> Result<f64, LabError> {
    let archive = image.archive.to_string_lossy();
    with_fresh_store(work, &argv(chapter, &["load", "-q", "-i", &archive]))
}

/// GNU tar: each layer, one after another, into one fresh directory, as
/// root (`-p`: modes as in the archive; ownership is kept for root).
fn time_tar(work: &Path, image: &BenchImage) -> Result<f64, LabError> {
    let destination = fresh(work, "tar-x")?;
    let into = destination.0.to_string_lossy();
    let mut total = Duration::ZERO;
    for layer in &image.layers {
        let layer = layer.to_string_lossy();
        total += run_once(&words(&["tar", "-xpf", &layer, "-C", &into]))?;
    }
    Ok(millis(total))
}

/// A row of times (ms) as rates of moving `bytes` (MiB/s): the median
/// time's rate, and the p95 time's (the slow end, as for a time).
fn as_rate(row: ComparedRow, bytes: u64) -> ComparedRow {
    let mib = bytes as f64 / f64::from(1 << 20);
    let rate = |ms: f64| mib / (ms / 1000.0);
    ComparedRow {
        unit: "MiB/s".into(),
        median: rate(row.median),
        p95: rate(row.p95),
        peer_median: row.peer_median.map(rate),
        peer_p95: row.peer_p95.map(rate),
        ..row
    }
}

/// `warmup + runs` rounds of `round`, which times ours and then the
/// peer's (None where there is no peer): the measured rounds' times.
/// `progress` is told every tenth measured round (a round of load or
/// pull takes seconds).
fn in_rounds(
    plan: &ImageBenchPlan,
    progress: &dyn Fn(&str),
    mut round: impl FnMut() -> Result<(f64, Option<f64>), LabError>,
) -> Result<(Vec<f64>, Vec<f64>), LabError> {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for number in 0..plan.warmup + plan.runs {
        let (mine, peer) = round()?;
        if number >= plan.warmup {
            ours.push(mine);
            theirs.extend(peer);
            if ours.len() % 10 == 0 {
                progress(&format!("  round {} of {}", ours.len(), plan.runs));
            }
        }
    }
    Ok((ours, theirs))
}

/// Issue 16's goal for load: at least 0.9x tar's rate.
fn load_goal(row: &ComparedRow) -> Option<Goal> {
    let ratio = row.median / row.peer_median?;
    Some(Goal {
        target: "at least 0.9x tar's rate".into(),
        measured: format!("{ratio:.2}x"),
        met: ratio >= 0.9,
    })
}

/// Issue 16's goal for pull: not slower than skopeo.
fn pull_goal(row: &ComparedRow) -> Option<Goal> {
    let ratio = row.median / row.peer_median?;
    Some(Goal {
        target: "not slower than skopeo".into(),
        measured: format!("{ratio:.2}x its time"),
        met: ratio <= 1.0,
    })
}

/// Issue 16's goal for run: within 1 ms of chapter 07.
fn run_goal(row: &ComparedRow) -> Option<Goal> {
    let difference = row.median - row.peer_median?;
    Some(Goal {
        target: "within 1 ms of ch07".into(),
        measured: format!("{difference:+.2} ms"),
        met: difference <= 1.0,
    })
}

/// Debian's docker-registry on 127.0.0.1, its blobs in a directory of
/// its own: killed and removed when dropped, however the bench ends.
struct Registry {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = remove_tree(&self.dir);
    }
}

impl Registry {
    fn start(dir: &Path) -> Result<Registry, String> {
        std::fs::create_dir_all(dir.join("storage")).map_err(|e| format!("mkdir: {e}"))?;
        // A port nobody listens on now; the registry binds it next.
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            .port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            ),
        )
        .map_err(|e| format!("write {}: {e}", config.display()))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run docker-registry: {e}"))?;
        let mut registry = Registry {
            child,
            dir: dir.to_path_buf(),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = registry.child.try_wait() {
                return Err(format!("docker-registry ended ({status})"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "docker-registry did not listen on port {port} in 10 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(registry)
    }

    fn image(&self) -> String {
        format!("127.0.0.1:{}/{REPOSITORY}:v1", self.port)
    }
}

/// Why pull cannot be measured on this machine, if it cannot.
fn pull_unmeasurable() -> Option<String> {
    let missing: Vec<&str> = ["docker-registry", "skopeo"]
        .into_iter()
        .filter(|tool| crate::hostinfo::find_in_path(tool).is_none())
        .collect();
    (!missing.is_empty()).then(|| format!("{} not installed", missing.join(" and ")))
}

/// One untimed pull into a fresh store, stderr kept: whether `pull` works
/// here (it may not be built yet), and why not.
fn try_pull(work: &Path, chapter: &Path, image: &str) -> Result<(), String> {
    let store = fresh(work, "store").map_err(|e| e.to_string())?;
    let output = Command::new(chapter)
        .args(["pull", "-q", image])
        .env(STORAGE_ENV, &store.0)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", chapter.display()))?;
    match output.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&output.stderr)
            .lines()
            .next()
            .unwrap_or("failed")
            .trim()
            .trim_start_matches("ch08-images: ")
            .to_string()),
    }
}

/// `pull` against `skopeo copy docker:// dir:`, from a registry the image
/// was pushed to; None (and a note) when it cannot be measured.
fn pull_row(
    plan: &ImageBenchPlan,
    chapter: &Path,
    image: &BenchImage,
    notes: &mut Vec<String>,
    progress: &dyn Fn(&str),
) -> Result<Option<ComparedRow>, LabError> {
    if let Some(why) = pull_unmeasurable() {
        notes.push(format!("pull: not measured ({why})"));
        return Ok(None);
    }
    let registry = match Registry::start(&plan.work.join("registry")) {
        Ok(registry) => registry,
        Err(why) => {
            notes.push(format!("pull: not measured ({why})"));
            return Ok(None);
        }
    };
    let reference = registry.image();
    progress(&format!("pushing the image to {reference} with skopeo ..."));
    let archive = format!("docker-archive:{}", image.archive.display());
    let destination = format!("docker://{reference}");
    // --insecure-policy: the host's signature policy has no say over an
    // image the bench made and serves itself.
    let skopeo = |args: &[&str]| {
        let mut argv = words(&["skopeo", "--insecure-policy", "copy", "-q"]);
        argv.extend(words(args));
        argv
    };
    run_once(&skopeo(&[
        "--dest-tls-verify=false",
        &archive,
        &destination,
    ]))?;
    if let Err(why) = try_pull(plan.work, chapter, &reference) {
        notes.push(format!("pull: not measured (ch08-images pull: {why})"));
        return Ok(None);
    }
    progress("timing pull against skopeo copy ...");
    let pull = argv(chapter, &["pull", "-q", &reference]);
    let (ours, theirs) = in_rounds(plan, progress, || {
        let ms = with_fresh_store(plan.work, &pull)?;
        let copy = fresh(plan.work, "skopeo-dir")?;
        let into = format!("dir:{}", copy.0.display());
        let peer_ms = millis(run_once(&skopeo(&[
            "--src-tls-verify=false",
            &destination,
            &into,
        ]))?);
        Ok((ms, Some(peer_ms)))
    })?;
    drop(registry);
    notes.push(
        "skopeo copy to dir: keeps the layers' blobs as they came (gzip); pull also \
         decompresses and unpacks every layer, the work of `gzip -d | tar -x`"
            .into(),
    );
    Ok(with_goal(
        compared_row(
            "pull from 127.0.0.1 (gzip layers)",
            "ms",
            ours,
            "skopeo copy docker:// dir:".into(),
            theirs,
        ),
        pull_goal,
    ))
}

/// Chapter 08's image verbs, each beside its peer, in interleaved rounds
/// as [`super::measure_all`] times start-ups. `progress` is told what is
/// being timed.
pub fn images(plan: &ImageBenchPlan, progress: &dyn Fn(&str)) -> Result<Comparison, LabError> {
    let mut images = Comparison::default();
    let Some(chapter) = built_chapter(
        "ch08-images",
        "its images were not measured",
        &mut images.notes,
    ) else {
        return Ok(images);
    };
    std::fs::create_dir_all(plan.work).map_err(io_error("mkdir", plan.work))?;
    let work = Scratch(plan.work.to_path_buf());
    let image = make_image(plan.rootfs, &work.0, plan.generated_layer_bytes)?;
    let megabytes = image.layer_bytes as f64 / f64::from(1 << 20);
    progress(&format!(
        "timing load of a 5-layer archive ({megabytes:.0} MiB of layers) against tar -x ..."
    ));
    let tar_installed = crate::hostinfo::find_in_path("tar").is_some();
    if !tar_installed {
        images
            .notes
            .push("tar: not measured (GNU tar not installed)".into());
    }
    let (load, tar) = in_rounds(plan, progress, || {
        let ours = time_load(&work.0, &chapter, &image)?;
        let theirs = match tar_installed {
            true => Some(time_tar(&work.0, &image)?),
            false => None,
        };
        Ok((ours, theirs))
    })?;
    let load_row = compared_row(
        &format!("load -i, 5-layer docker-archive ({megabytes:.0} MiB)"),
        "ms",
        load,
        match tar_installed {
            true => "tar -xpf of each layer".into(),
            false => "tar -xpf (tar not installed)".into(),
        },
        tar,
    )
    .map(|row| as_rate(row, image.layer_bytes));
    images.rows.extend(with_goal(load_row, load_goal));
    images.notes.push(
        "load writes each layer twice, unpacked and as the blob it came as; \
         tar -x only unpacks"
            .into(),
    );

    let pull = pull_row(plan, &chapter, &image, &mut images.notes, progress)?;
    images.rows.extend(pull);

    images
        .rows
        .extend(commit_rows(plan, &chapter, &image, &work.0, progress)?);
    images.rows.extend(rebuild_row(
        plan,
        &chapter,
        &image,
        &work.0,
        progress,
        &mut images.notes,
    )?);

    let Some(ch07) = built_chapter(
        "ch07-lifecycle",
        "run --rm of the image was not measured (ch07 is its peer)",
        &mut images.notes,
    ) else {
        return Ok(images);
    };
    progress("timing run --rm of the image against ch07 on the plain rootfs ...");
    let store = fresh(&work.0, "store-run")?;
    let archive = image.archive.to_string_lossy();
    run_once_with(
        &argv(&chapter, &["load", "-q", "-i", &archive]),
        &[(STORAGE_ENV, &store.0)],
    )?;
    let root = plan.rootfs.to_string_lossy();
    let ours = argv(
        &chapter,
        &["run", "--rm", "--net", "none", TAG, "/bin/true"],
    );
    let theirs = argv(&ch07, &["run", "--rm", "--net", "none", &root, "/bin/true"]);
    let (run, plain) = in_rounds(plan, progress, || {
        let ms = millis(run_once_with(&ours, &[(STORAGE_ENV, &store.0)])?);
        Ok((ms, Some(millis(run_once(&theirs)?))))
    })?;
    images.rows.extend(with_goal(
        compared_row(
            "run --rm --net none IMAGE /bin/true",
            "ms",
            run,
            "ch07 run --rm ROOTFS".into(),
            plain,
        ),
        run_goal,
    ));
    Ok(images)
}

/// Run `argv` with the bench's image store; its stdout (an image id).
fn output_with(argv: &[OsString], store: &Path) -> Result<String, LabError> {
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .env(STORAGE_ENV, store)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| LabError::ToolFailed {
            command: format!("{argv:?}"),
            message: e.to_string(),
        })?;
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).trim().to_string()),
        false => Err(LabError::ToolFailed {
            command: format!("{argv:?}"),
            message: format!("exited with {}", output.status),
        }),
    }
}

/// One round of commit: a container of `image` writes `bytes` of new
/// files (not timed), `commit` makes its image (timed), and both go.
fn time_commit(chapter: &Path, store: &Path, image: &str, bytes: u64) -> Result<f64, LabError> {
    let name = format!("bench-commit-{}", std::process::id());
    // Ten files of a tenth each: what an install step writes, roughly.
    let script = format!(
        "for i in 0 1 2 3 4 5 6 7 8 9; do head -c {} /dev/urandom > /changed-$i; done",
        bytes / 10
    );
    let run = argv(
        chapter,
        &[
            "run", "--name", &name, "--net", "none", image, "/bin/sh", "-c", &script,
        ],
    );
    output_with(&run, store)?;
    let started = Instant::now();
    let id = output_with(&argv(chapter, &["commit", "-q", &name]), store);
    let elapsed = millis(started.elapsed());
    output_with(&argv(chapter, &["rm", &name]), store)?;
    output_with(&argv(chapter, &["rmi", &id?]), store)?;
    Ok(elapsed)
}

/// Issue 17's goal for commit: its time follows the change, not the
/// image: the same change on an image several times larger costs about
/// the same.
fn commit_goal(row: &ComparedRow) -> Option<Goal> {
    let ratio = row.median / row.peer_median?;
    Some(Goal {
        target: "within 1.5x of the same change on the small image".into(),
        measured: format!("{ratio:.2}x"),
        met: ratio <= 1.5,
    })
}

/// What a diff layer saves: a small change costs a fraction of storing
/// the whole tree again.
fn diff_goal(row: &ComparedRow) -> Option<Goal> {
    let ratio = row.median / row.peer_median?;
    Some(Goal {
        target: "under 0.5x of importing the whole tree".into(),
        measured: format!("{ratio:.2}x"),
        met: ratio < 0.5,
    })
}

/// `commit` of a container that wrote 10 MiB, on the bench's image and on
/// its first layer alone; and of one that wrote 1 MiB, beside what a
/// runtime without diff layers does: import the whole tree again.
fn commit_rows(
    plan: &ImageBenchPlan,
    chapter: &Path,
    image: &BenchImage,
    work: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<ComparedRow>, LabError> {
    let store = fresh(work, "store-commit")?;
    let archive = image.archive.to_string_lossy();
    output_with(&argv(chapter, &["load", "-q", "-i", &archive]), &store.0)?;
    let first = image.layers[0].to_string_lossy();
    output_with(
        &argv(chapter, &["import", &first, "bench/one:v1"]),
        &store.0,
    )?;
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let big = mib(image.layer_bytes);
    let small = mib(std::fs::metadata(&image.layers[0]).map_or(0, |m| m.len()));
    let change = 10 << 20;
    progress(&format!(
        "timing commit of 10 MiB changed on the {big:.0} MiB image and on its {small:.0} MiB first layer ..."
    ));
    let (on_big, on_small) = in_rounds(plan, progress, || {
        let ours = time_commit(chapter, &store.0, TAG, change)?;
        let theirs = time_commit(chapter, &store.0, "bench/one:v1", change)?;
        Ok((ours, Some(theirs)))
    })?;
    let mut rows = Vec::new();
    rows.extend(with_goal(
        compared_row(
            &format!("commit, 10 MiB changed, {big:.0} MiB image"),
            "ms",
            on_big,
            format!("same change, {small:.0} MiB image"),
            on_small,
        ),
        commit_goal,
    ));
    // The whole tree, as the image's layers make it, imported as one
    // layer: what committing costs when the layer is the whole root.
    let tree = fresh(work, "whole-tree")?;
    let into = tree.0.to_string_lossy();
    for layer in &image.layers {
        run_once(&words(&[
            "tar",
            "-xpf",
            &layer.to_string_lossy(),
            "-C",
            &into,
        ]))?;
    }
    progress("timing commit of 1 MiB changed against an import of the whole tree ...");
    let (one, whole) = in_rounds(plan, progress, || {
        let ours = time_commit(chapter, &store.0, TAG, 1 << 20)?;
        let started = Instant::now();
        let id = output_with(&argv(chapter, &["import", &into]), &store.0)?;
        let theirs = millis(started.elapsed());
        output_with(&argv(chapter, &["rmi", &id]), &store.0)?;
        Ok((ours, Some(theirs)))
    })?;
    rows.extend(with_goal(
        compared_row(
            &format!("commit, 1 MiB changed, {big:.0} MiB image"),
            "ms",
            one,
            "import of the whole tree (no diff layer)".into(),
            whole,
        ),
        diff_goal,
    ));
    Ok(rows)
}

/// The six steps the rebuild is timed with, from `FROM`'s image on: an
/// ENV, a COPY, a RUN, a WORKDIR and a CMD, as issue 17 asks.
const SIX_STEPS: &str = "ENV GREETING=hello
COPY app /app/
RUN echo ran > /ran.txt
WORKDIR /app
CMD [\"cat\", \"/app/hello.txt\"]
";

/// Issue 17's goal for an unchanged rebuild: under 0.2 s.
fn rebuild_goal(row: &ComparedRow) -> Option<Goal> {
    Some(Goal {
        target: "under 200 ms".into(),
        measured: format!("{:.1} ms", row.median),
        met: row.median < 200.0,
    })
}

/// `build` of a six-step Containerfile with nothing changed since the
/// last build, beside `buildah bud --layers` of the same steps (its base
/// pulled into a storage of its own from our `save`), when buildah is
/// installed.
fn rebuild_row(
    plan: &ImageBenchPlan,
    chapter: &Path,
    image: &BenchImage,
    work: &Path,
    progress: &dyn Fn(&str),
    notes: &mut Vec<String>,
) -> Result<Option<ComparedRow>, LabError> {
    let store = fresh(work, "store-build")?;
    let context = fresh(work, "context")?;
    let app = context.0.join("app");
    std::fs::create_dir_all(&app).map_err(io_error("mkdir", &app))?;
    let hello = app.join("hello.txt");
    std::fs::write(&hello, "hello\n").map_err(io_error("write", &hello))?;
    let ours = context.0.join("Containerfile");
    std::fs::write(&ours, format!("FROM bench/one:v1\n{SIX_STEPS}"))
        .map_err(io_error("write", &ours))?;
    let first = image.layers[0].to_string_lossy();
    output_with(
        &argv(chapter, &["import", &first, "bench/one:v1"]),
        &store.0,
    )?;
    let root = context.0.to_string_lossy();
    let build = argv(chapter, &["build", "-q", "-t", "bench/app:v1", &root]);
    output_with(&build, &store.0)?;
    let buildah = match crate::hostinfo::find_in_path("buildah") {
        Some(_) => Some(Buildah::prepare(chapter, &store.0, work, &context.0)?),
        None => {
            notes.push("buildah: not measured (not installed)".into());
            None
        }
    };
    progress("timing an unchanged rebuild of a six-step Containerfile against buildah bud ...");
    let (rebuild, theirs) = in_rounds(plan, progress, || {
        let started = Instant::now();
        output_with(&build, &store.0)?;
        let ours = millis(started.elapsed());
        let theirs = buildah
            .as_ref()
            .map(|b| millis_of(&b.rebuild))
            .transpose()?;
        Ok((ours, theirs))
    })?;
    Ok(with_goal(
        compared_row(
            "build, 6 steps, nothing changed",
            "ms",
            rebuild,
            match buildah {
                Some(_) => "buildah bud --layers".into(),
                None => "buildah (not installed)".into(),
            },
            theirs,
        ),
        rebuild_goal,
    ))
}

fn millis_of(argv: &[OsString]) -> Result<f64, LabError> {
    Ok(millis(run_once(argv)?))
}

/// buildah with a storage of its own under the bench's directory, the
/// base image pulled into it from an oci-archive of ours, and the same
/// six steps built once, so that its next build is all cache.
struct Buildah {
    rebuild: Vec<OsString>,
}

impl Buildah {
    fn prepare(
        chapter: &Path,
        store: &Path,
        work: &Path,
        context: &Path,
    ) -> Result<Buildah, LabError> {
        let base = work.join("base-oci.tar");
        let archive = base.to_string_lossy();
        output_with(
            &argv(
                chapter,
                &[
                    "save",
                    "--format",
                    "oci-archive",
                    "-o",
                    &archive,
                    "bench/one:v1",
                ],
            ),
            store,
        )?;
        let root = work.join("buildah-root").to_string_lossy().into_owned();
        let runroot = work.join("buildah-run").to_string_lossy().into_owned();
        let global = [
            "--root",
            &root,
            "--runroot",
            &runroot,
            "--storage-driver",
            "vfs",
        ];
        let mut pull = words(&["buildah"]);
        pull.extend(words(&global));
        pull.extend(words(&["pull", "-q", &format!("oci-archive:{archive}")]));
        run_once(&pull)?;
        let file = context.join("Containerfile.buildah");
        std::fs::write(&file, format!("FROM localhost/bench/one:v1\n{SIX_STEPS}"))
            .map_err(io_error("write", &file))?;
        let mut rebuild = words(&["buildah"]);
        rebuild.extend(words(&global));
        rebuild.extend(words(&["bud"]));
        // Debian's buildah runs RUN steps with crun, which refuses a host
        // with cgroup v1 controllers beside a cgroup2 mount; runc, where
        // installed, runs anywhere.
        if let Some(runc) = crate::hostinfo::find_in_path("runc") {
            rebuild.extend(words(&["--runtime", &runc.to_string_lossy()]));
        }
        rebuild.extend(words(&[
            "-q",
            "--layers",
            "--isolation",
            "oci",
            "--network",
            "none",
            "-f",
            &file.to_string_lossy(),
            "-t",
            "bench-app",
            &context.to_string_lossy(),
        ]));
        run_once(&rebuild)?;
        Ok(Buildah { rebuild })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::store::ImageStore;
    use crate::image::verbs::LoadArgs;

    #[test]
    fn the_bench_image_loads_as_five_layers_with_its_tag() {
        let work = Scratch(
            std::env::temp_dir().join(format!("container-lab-bench-image-{}", std::process::id())),
        );
        let rootfs = work.0.join("rootfs");
        for dir in ["usr/bin", "usr/local/bin", "etc"] {
            std::fs::create_dir_all(rootfs.join(dir)).unwrap();
        }
        std::fs::write(rootfs.join("usr/bin/true"), b"#!/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("usr/local/bin/lab-probe"), b"left out").unwrap();
        std::os::unix::fs::symlink("usr/bin", rootfs.join("bin")).unwrap();

        let image = make_image(&rootfs, &work.0, 200 << 10).unwrap();
        assert_eq!(image.layers.len(), 5);
        let generated = std::fs::metadata(&image.layers[1]).unwrap().len();
        assert!(generated >= 200 << 10, "{generated} bytes");
        // The same bytes on every run: the noise is seeded.
        let again = Scratch(work.0.join("again"));
        std::fs::create_dir_all(&again.0).unwrap();
        let second = make_image(&rootfs, &again.0, 200 << 10).unwrap();
        assert_eq!(
            std::fs::read(&image.layers[4]).unwrap(),
            std::fs::read(&second.layers[4]).unwrap()
        );

        let store = ImageStore::at(&work.0.join("store")).unwrap();
        let args = LoadArgs {
            input: image.archive.clone(),
            quiet: true,
        };
        crate::image::archive::load(&store, &args).unwrap();
        let record = store.find(TAG).unwrap();
        assert_eq!(record.layers.len(), 5);
        let base = store.layer_dir(&record.layers[0]);
        assert!(base.join("usr/bin/true").is_file());
        assert!(base.join("bin").is_symlink());
        assert!(base.join("usr/local").is_dir() && !base.join("usr/local/bin").exists());
        assert!(
            store
                .layer_dir(&record.layers[4])
                .join("bench/layer5/d00")
                .is_dir()
        );
    }

    #[test]
    fn goals_compare_the_medians() {
        let row = |median: f64, peer: f64| {
            compared_row("op", "ms", vec![median], "peer".into(), vec![peer]).unwrap()
        };
        let load = load_goal(&as_rate(row(100.0, 95.0), 100 << 20)).unwrap();
        assert_eq!((load.measured.as_str(), load.met), ("0.95x", true));
        let load = load_goal(&as_rate(row(100.0, 80.0), 100 << 20)).unwrap();
        assert_eq!((load.measured.as_str(), load.met), ("0.80x", false));
        let pull = pull_goal(&row(110.0, 100.0)).unwrap();
        assert_eq!(
            (pull.measured.as_str(), pull.met),
            ("1.10x its time", false)
        );
        let run = run_goal(&row(10.5, 10.0)).unwrap();
        assert_eq!((run.measured.as_str(), run.met), ("+0.50 ms", true));
        let alone = compared_row("op", "ms", vec![1.0], "none".into(), vec![]).unwrap();
        assert_eq!(run_goal(&alone), None);
    }
}
