//! The verbs that look at and remove what the store holds: images, rmi,
//! image inspect, history, image prune, and diff (what a container changed
//! in its writable layer).

use super::digest::Digest;
use super::store::{ImageRecord, ImageStore};
use super::verbs::ListArgs;
use crate::error::LabError;
use crate::runtime::lifecycle::align;
use crate::runtime::state::{self, Store};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Bytes of a directory tree's files (their sizes, as `du --apparent-size`
/// and `docker images` count them; a hard-linked file once).
pub fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.nlink() == 1 || seen.insert(meta.ino()) {
                total += meta.size();
            }
        }
    }
    total
}

/// Sizes as Docker prints them: 1000-based, 3 significant digits.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes}B"),
        _ if value < 10.0 => format!("{value:.2}{}", units[unit]),
        _ if value < 100.0 => format!("{value:.1}{}", units[unit]),
        _ => format!("{value:.0}{}", units[unit]),
    }
}

/// Seconds since the epoch of an RFC 3339 time (`2024-05-01T12:00:00Z`,
/// fractions and offsets allowed), as image configs write `created`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    let rest = &text[19..];
    let zone = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(offset) = zone.strip_prefix(['+', '-']) {
        let sign = if zone.starts_with('+') { 1 } else { -1 };
        let hours: i64 = offset.get(0..2)?.parse().ok()?;
        let minutes: i64 = offset.get(3..5)?.parse().ok()?;
        seconds -= sign * (hours * 3600 + minutes * 60);
    }
    Some(seconds)
}

/// "2 hours ago", from an RFC 3339 time.
fn ago(created: Option<&str>) -> String {
    let Some(then) = created.and_then(parse_rfc3339) else {
        return "N/A".into();
    };
    let now = (state::now() / 1_000_000_000) as i64;
    match now - then {
        ..0 => "In the future".into(),
        seconds => format!("{} ago", state::human_duration(seconds as u64)),
    }
}

fn short(id: &Digest, no_trunc: bool) -> String {
    match no_trunc {
        true => id.to_string(),
        false => id.short().to_string(),
    }
}

// ANCHOR: images
/// `images`: one line per tag (an untagged image shows `<none>`).
pub fn images(store: &ImageStore, args: &ListArgs) -> Result<i32, LabError> {
    let tags = store.tags();
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(String::from)];
    for image in store.images() {
        if args.quiet {
            println!("{}", short(&image.id, args.no_trunc));
            continue;
        }
        let created = store.read_config(&image.id).ok().and_then(|c| c.created);
        let mut names: Vec<(String, String)> = tags
            .iter()
            .filter(|(_, id)| **id == image.id)
            .filter_map(|(tag, _)| tag.rsplit_once(':'))
            .map(|(name, tag)| (name.to_string(), tag.to_string()))
            .collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (name, tag) in names {
            rows.push([
                name,
                tag,
                short(&image.id, args.no_trunc),
                ago(created.as_deref()),
                human_size(image.size),
            ]);
        }
    }
    if !args.quiet {
        print!("{}", align(&rows));
    }
    Ok(0)
}
// ANCHOR_END: images

/// The containers (any state) made from this image.
fn containers_of(image: &Digest) -> Vec<state::Record> {
    let Ok(containers) = Store::open() else {
        return vec![];
    };
    containers
        .list()
        .into_iter()
        .filter(|record| record.image.as_deref() == Some(&image.to_string()))
        .collect()
}

// ANCHOR: rmi
/// `rmi`: a tag is taken off; the image goes when its last tag does (or
/// when named by id). Refused while a container, running or not, was made
/// from it: its root is those layers. Layers go only when no other image
/// shares them.
pub fn rmi(store: &ImageStore, names: &[String], force: bool) -> Result<i32, LabError> {
    let _lock = store.lock()?;
    let mut failed = None;
    for name in names {
        match remove_one(store, name, force) {
            Ok(()) => {}
            Err(error) => {
                crate::program::print_error(&error);
                failed = Some(error.exit_code());
            }
        }
    }
    let _ = store.prune_unreferenced()?;
    Ok(failed.unwrap_or(0))
}

fn remove_one(store: &ImageStore, name: &str, force: bool) -> Result<(), LabError> {
    let image = store.find(name)?;
    let tags = store.tags_of(&image.id);
    let by_tag = super::reference::Reference::parse(name)
        .ok()
        .and_then(|r| r.tagged())
        .filter(|tag| tags.contains(tag));
    if let Some(tag) = &by_tag
        && tags.len() > 1
    {
        store.untag(tag)?;
        println!("Untagged: {tag}");
        return Ok(());
    }
    if by_tag.is_none() && tags.len() > 1 && !force {
        return Err(LabError::Image {
            message: format!(
                "image {} is tagged in several names: {}",
                image.id.short(),
                tags.join(", ")
            ),
            hint: "remove it by name, one tag at a time, or use -f".into(),
        });
    }
    if let Some(container) = containers_of(&image.id).first() {
        return Err(LabError::Image {
            message: format!(
                "image {name} is in use by container {} ({})",
                &container.id[..12],
                container.name
            ),
            hint: format!("remove the container first: rm -f {}", container.name),
        });
    }
    for tag in &tags {
        println!("Untagged: {tag}");
    }
    store.remove_image(&image.id)?;
    println!("Deleted: {}", image.id);
    Ok(())
}
// ANCHOR_END: rmi

/// `image inspect`: Docker's fields, then the lab's record.
pub fn inspect(store: &ImageStore, names: &[String]) -> Result<i32, LabError> {
    let mut all = Vec::new();
    for name in names {
        let image = store.find(name)?;
        let config = store.read_config(&image.id)?;
        all.push(serde_json::json!({
            "Id": image.id,
            "RepoTags": store.tags_of(&image.id),
            "RepoDigests": image.repo_digests,
            "Created": config.created,
            "Author": config.author,
            "Architecture": config.architecture,
            "Os": config.os,
            "Size": image.size,
            "Config": config.config,
            "RootFS": { "Type": config.rootfs.kind, "Layers": config.rootfs.diff_ids },
            "Manifest": image.manifest,
            "LayerDirs": image.layers.iter().map(|l| store.layer_dir(l)).collect::<Vec<PathBuf>>(),
        }));
    }
    println!("{}", serde_json::to_string_pretty(&all).expect("json"));
    Ok(0)
}

/// `history`: the config's history, newest first; a step that made a layer
/// shows that layer's size.
pub fn history(store: &ImageStore, name: &str, no_trunc: bool) -> Result<i32, LabError> {
    let image = store.find(name)?;
    let config = store.read_config(&image.id)?;
    let mut layers = image.layers.iter();
    let mut rows = Vec::new();
    for step in &config.history {
        let size = match step.empty_layer {
            true => 0,
            false => layers.next().map_or(0, |layer| du(&store.layer_dir(layer))),
        };
        let mut by = step.created_by.clone().unwrap_or_default();
        if !no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        rows.push([
            ago(step.created.as_deref()),
            by,
            human_size(size),
            step.comment.clone().unwrap_or_default(),
        ]);
    }
    rows.reverse();
    let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from)];
    for (n, [created, by, size, comment]) in rows.into_iter().enumerate() {
        let id = if n == 0 {
            short(&image.id, no_trunc)
        } else {
            "<missing>".into()
        };
        table.push([id, created, by, size, comment]);
    }
    print!("{}", align(&table));
    Ok(0)
}

/// `image prune`: untagged images (every one with -a) that no container
/// uses, then every layer and blob no image names.
pub fn prune(store: &ImageStore, all: bool) -> Result<i32, LabError> {
    let _lock = store.lock()?;
    let before = du(&store.root.join("layers")) + du(&store.root.join("blobs"));
    let tags = store.tags();
    println!("Deleted Images:");
    for image in store.images() {
        let tagged = tags.values().any(|id| *id == image.id);
        if (tagged && !all) || !containers_of(&image.id).is_empty() {
            continue;
        }
        for tag in store.tags_of(&image.id) {
            println!("untagged: {tag}");
        }
        store.remove_image(&image.id)?;
        println!("deleted: {}", image.id);
    }
    store.prune_unreferenced()?;
    let after = du(&store.root.join("layers")) + du(&store.root.join("blobs"));
    println!(
        "\nTotal reclaimed space: {}",
        human_size(before.saturating_sub(after))
    );
    Ok(0)
}

/// The image's layer directories, top first, as overlayfs's lowerdir
/// lists them.
pub fn lower_dirs(store: &ImageStore, image: &ImageRecord) -> Vec<PathBuf> {
    image
        .layers
        .iter()
        .rev()
        .map(|layer| store.layer_dir(layer))
        .collect()
}

// ANCHOR: diff
/// `diff`: what a container changed, from its upper layer alone. A
/// whiteout (character device 0/0) is a deletion; anything else is a
/// change if some lower layer has that path, an addition if none has.
pub fn diff(store: &ImageStore, name: &str) -> Result<i32, LabError> {
    let container = Store::open()?.find(name)?;
    let (Some(layer), Some(image)) = (&container.layer, &container.image) else {
        return Err(LabError::Container {
            message: format!("container {name} has no image: it runs on a plain root filesystem"),
            hint: "diff needs a container run from an image (ch08 on)".into(),
        });
    };
    let lowers = match Digest::parse(image).ok().and_then(|id| store.image(&id)) {
        Some(image) => lower_dirs(store, &image),
        None => vec![],
    };
    for (kind, path) in changes(&layer.join("upper"), &lowers) {
        println!("{kind} {}", path.display());
    }
    Ok(0)
}

/// (A|C|D, /path) for every entry of `upper`, in path order.
///
/// The container may still run and change its upper layer while this
/// reads it: a directory swapped for a symlink to `/root` between a look
/// and an open would make the host's root list the host (the shape of
/// CVE-2018-15664). So the walk goes by descriptor, each directory opened
/// relative to its parent with O_NOFOLLOW, and the lower layers are
/// looked up with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Vec<(char, PathBuf)> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    use nix::sys::stat::SFlag;
    let lower_dirs: Vec<std::os::fd::OwnedFd> = lowers
        .iter()
        .filter_map(|lower| state::open_directory(nix::fcntl::AT_FDCWD, lower).ok())
        .collect();
    let in_lower = |path: &Path| {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        lower_dirs
            .iter()
            .any(|dir| nix::fcntl::openat2(dir, path, how).is_ok())
    };
    let mut found = Vec::new();
    let Ok(top) = state::open_directory(nix::fcntl::AT_FDCWD, upper) else {
        return found;
    };
    let mut pending = vec![(PathBuf::new(), top)];
    while let Some((relative, dir_fd)) = pending.pop() {
        let Ok(mut dir) = state::read_directory(&dir_fd) else {
            continue;
        };
        let names: Vec<std::ffi::OsString> = dir
            .iter()
            .flatten()
            .map(|entry| std::ffi::OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string())
            .filter(|name| name != "." && name != "..")
            .collect();
        for name in names {
            let path = relative.join(&name);
            let Ok(stat) = nix::sys::stat::fstatat(
                &dir,
                name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) else {
                continue;
            };
            let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
            let whiteout = kind == SFlag::S_IFCHR && stat.st_rdev == 0;
            let change = match (whiteout, in_lower(&path)) {
                (true, _) => 'D',
                (false, true) => 'C',
                (false, false) => 'A',
            };
            found.push((change, Path::new("/").join(&path)));
            // O_NOFOLLOW: a directory swapped for a symlink meanwhile is
            // not opened, so not listed.
            if kind == SFlag::S_IFDIR
                && let Ok(child) = state::open_directory(&dir, Path::new(&name))
            {
                pending.push((path, child));
            }
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}
// ANCHOR_END: diff

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_printed_as_docker_prints_them() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(72_800_000), "72.8MB");
        assert_eq!(human_size(1_230_000_000), "1.23GB");
    }

    #[test]
    fn rfc3339_times_become_epoch_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.123456789Z"),
            Some(1_714_564_800)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn changes_are_added_changed_or_deleted_against_the_lower_layers() {
        let base =
            std::env::temp_dir().join(format!("container-lab-changes-{}", std::process::id()));
        let (upper, lower) = (base.join("upper"), base.join("lower"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/hostname"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hostname"), "y").unwrap();
        std::fs::write(upper.join("new"), "z").unwrap();
        let found = changes(&upper, &[lower]);
        let _ = std::fs::remove_dir_all(&base);
        let shown: Vec<String> = found
            .iter()
            .map(|(k, p)| format!("{k} {}", p.display()))
            .collect();
        assert_eq!(shown, ["C /etc", "C /etc/hostname", "A /new"]);
    }
}
