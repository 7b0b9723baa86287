//! The anatomy as a picture: a stack of layers, the process on top and the
//! host's kernel at the bottom, each drawn from the facts `lab anatomy`
//! read. `lab anatomy --book` writes it beside the facts, and
//! `tests/book.rs` draws it again from the facts on disk and compares.

use super::{Anatomy, short};
use crate::lab::svg::escape;
use crate::runtime::userns::IdMap;

/// The whole picture's width: the book's page is about 700 pixels wide.
const WIDTH: f64 = 680.0;
const MARGIN: f64 = 10.0;
/// The column of layer names, left of what each layer holds.
const LABEL_WIDTH: f64 = 126.0;
const CONTENT_X: f64 = MARGIN + LABEL_WIDTH;
const CONTENT_WIDTH: f64 = WIDTH - CONTENT_X - 2.0 * MARGIN;
const LINE: f64 = 16.0;
const CHIP_HEIGHT: f64 = 17.0;
/// A character of the 10-pixel monospace font the chips use.
const MONO_CHAR: f64 = 6.0;
/// An average character of the 11-pixel sans-serif text, generously.
const SANS_CHAR: f64 = 6.3;
const LAYER_GAP: f64 = 8.0;
const PADDING: f64 = 9.0;

/// A layer's colors: its fill, its border and the chips' fill.
struct Palette {
    fill: &'static str,
    stroke: &'static str,
    chip: &'static str,
}

const PROCESS: Palette = Palette {
    fill: "#e3f2fd",
    stroke: "#1565c0",
    chip: "#bbdefb",
};
const ROOTFS: Palette = Palette {
    fill: "#e8f5e9",
    stroke: "#2e7d32",
    chip: "#c8e6c9",
};
const NAMESPACES: Palette = Palette {
    fill: "#fff3e0",
    stroke: "#e65100",
    chip: "#ffcc80",
};
const KERNEL: Palette = Palette {
    fill: "#37474f",
    stroke: "#37474f",
    chip: "#37474f",
};
const CGROUPS: Palette = Palette {
    fill: "#f3e5f5",
    stroke: "#6a1b9a",
    chip: "#e1bee7",
};

/// The SVG being written, and where the next line goes.
struct Canvas {
    svg: String,
    y: f64,
}

impl Canvas {
    /// A line of sans-serif text at the content column; long lines wrap.
    fn text(&mut self, text: &str, style: &str) {
        for line in wrap(text, (CONTENT_WIDTH / SANS_CHAR) as usize) {
            self.svg += &format!(
                "<text x=\"{CONTENT_X:.1}\" y=\"{:.1}\"{style}>{}</text>\n",
                self.y + 12.0,
                escape(&line)
            );
            self.y += LINE;
        }
    }

    /// Labelled boxes in a row from `x`, wrapping at `right`; each chip
    /// is (text, its tooltip).
    fn chips(&mut self, chips: &[(String, String)], x: f64, right: f64, fill: &str) {
        let mut at = x;
        for (text, title) in chips {
            let width = text.chars().count() as f64 * MONO_CHAR + 10.0;
            if at > x && at + width > right {
                at = x;
                self.y += CHIP_HEIGHT + 4.0;
            }
            let tooltip = match title.is_empty() {
                true => String::new(),
                false => format!("<title>{}</title>", escape(title)),
            };
            self.svg += &format!(
                "<g><rect x=\"{at:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{CHIP_HEIGHT:.1}\" \
                 rx=\"3\" fill=\"{fill}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-family=\"monospace\" \
                 font-size=\"10\">{}</text>{tooltip}</g>\n",
                self.y + 1.0,
                at + 5.0,
                self.y + 13.0,
                escape(text)
            );
            at += width + 5.0;
        }
        self.y += CHIP_HEIGHT + 6.0;
    }

    /// A layer's box from `top` to the cursor, drawn beneath what was
    /// written since `mark`, with its name and the chapters that built it.
    fn layer(&mut self, top: f64, mark: usize, palette: &Palette, name: &str, chapters: &str) {
        let height = (self.y - top + PADDING / 2.0).max(3.0 * LINE);
        let (name_color, caption_color) = match palette.fill == palette.stroke {
            true => ("#ffffff", "#cfd8dc"),
            false => (palette.stroke, "#555"),
        };
        let frame = format!(
            "<rect x=\"{MARGIN:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{height:.1}\" rx=\"6\" \
             fill=\"{}\" stroke=\"{}\" stroke-width=\"1.5\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\" font-size=\"13\" fill=\"{}\">{}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"{caption_color}\">{}</text>\n",
            WIDTH - 2.0 * MARGIN,
            palette.fill,
            palette.stroke,
            MARGIN + 10.0,
            top + 20.0,
            name_color,
            escape(name),
            MARGIN + 10.0,
            top + 35.0,
            escape(chapters)
        );
        self.svg.insert_str(mark, &frame);
        self.y = top + height + LAYER_GAP;
    }
}

/// `text` cut into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// `0-65535 -> 1879048192-1879113727` for each range of a map.
fn ranges(map: &[IdMap]) -> String {
    map.iter()
        .map(|r| {
            let last = |start: u32| start.saturating_add(r.count.saturating_sub(1));
            format!(
                "{}-{} → {}-{}",
                r.inside,
                last(r.inside),
                r.outside,
                last(r.outside)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Anatomy {
    /// One sentence for screen readers: the whole picture.
    fn aria_label(&self) -> String {
        let p = &self.process;
        let r = &self.rootfs;
        let limits = self.cgroups.limits.phrases().join(", ");
        format!(
            "A chapter 09 container in layers, top to bottom: the process {} with {} \
             capabilities, seccomp mode {} and no_new_privs {}; a root filesystem of {} with {} \
             and {}, {} masked and {} read-only paths; new {} namespaces, the host's {}; a cgroup \
             v{} with {limits}; the host's kernel beneath all of them",
            p.command.join(" "),
            p.effective.len(),
            p.seccomp,
            if p.no_new_privs { "on" } else { "off" },
            r.fstype,
            plural(r.lower_layers, "lower layer", "lower layers"),
            if r.upper {
                "an upper one"
            } else {
                "no upper one"
            },
            r.masked.len(),
            r.read_only.len(),
            self.namespace_kinds(true).join(", "),
            match self.namespace_kinds(false).join(", ") {
                shared if shared.is_empty() => "none".to_string(),
                shared => shared,
            },
            self.cgroups.version,
        )
    }

    /// The anatomy as SVG: plain text and rectangles, no fonts or images
    /// from elsewhere.
    pub fn svg(&self) -> String {
        let mut canvas = Canvas {
            svg: String::new(),
            y: 0.0,
        };
        canvas.svg += &format!(
            "<text x=\"{MARGIN:.1}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">\
             A chapter 09 container, read from the host by lab anatomy</text>\n"
        );
        canvas.y = 28.0;
        for line in wrap(
            &self.started_with,
            ((WIDTH - 2.0 * MARGIN) / MONO_CHAR) as usize,
        ) {
            canvas.svg += &format!(
                "<text x=\"{MARGIN:.1}\" y=\"{:.1}\" font-family=\"monospace\" font-size=\"10\" \
                 fill=\"#333\">{}</text>\n",
                canvas.y + 10.0,
                escape(&line)
            );
            canvas.y += 14.0;
        }
        canvas.y += 8.0;
        self.draw_process(&mut canvas);
        self.draw_rootfs(&mut canvas);
        self.draw_namespaces(&mut canvas);
        self.draw_cgroups(&mut canvas);
        draw_kernel(&mut canvas);
        let height = canvas.y - LAYER_GAP + MARGIN;
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH:.0}\" height=\"{height:.0}\" \
             viewBox=\"0 0 {WIDTH:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\" \
             role=\"img\" aria-label=\"{}\">\n{}</svg>\n",
            escape(&self.aria_label()).replace('"', "&quot;"),
            canvas.svg
        )
    }

    fn draw_process(&self, canvas: &mut Canvas) {
        let p = &self.process;
        let (top, mark) = (canvas.y, canvas.svg.len());
        canvas.y += PADDING;
        canvas.svg += &format!(
            "<text x=\"{CONTENT_X:.1}\" y=\"{:.1}\"><tspan font-family=\"monospace\" \
             font-weight=\"bold\">{}</tspan>  PID {} inside{}</text>\n",
            canvas.y + 12.0,
            escape(&p.command.join(" ")),
            p.pid_inside,
            if p.pid_inside == 1 {
                ""
            } else {
                ", under the lab's init (PID 1)"
            }
        );
        canvas.y += LINE;
        let gid = match (p.gid_inside, p.gid_host) == (p.uid_inside, p.uid_host) {
            true => "gid the same".to_string(),
            false => format!("gid {} = {}", p.gid_inside, p.gid_host),
        };
        canvas.text(
            &format!(
                "uid {} inside = uid {} on the host ({gid})",
                p.uid_inside, p.uid_host
            ),
            "",
        );
        canvas.text(
            &format!(
                "{} of {} in its bounding set:",
                plural(p.effective.len(), "capability", "capabilities"),
                p.bounding.len()
            ),
            "",
        );
        let chips: Vec<(String, String)> = p
            .effective
            .iter()
            .map(|name| (short(name).to_string(), name.clone()))
            .collect();
        canvas.chips(&chips, CONTENT_X, CONTENT_X + CONTENT_WIDTH, PROCESS.chip);
        let seccomp = match p.seccomp {
            0 => "no seccomp".to_string(),
            1 => "seccomp strict (mode 1)".to_string(),
            2 => "seccomp filter (mode 2)".to_string(),
            mode => format!("seccomp mode {mode}"),
        };
        let no_new_privs = match p.no_new_privs {
            true => "no_new_privs",
            false => "setuid allowed",
        };
        canvas.chips(
            &[
                (seccomp, "Seccomp: in /proc/PID/status".into()),
                (
                    no_new_privs.into(),
                    "NoNewPrivs: in /proc/PID/status".into(),
                ),
            ],
            CONTENT_X,
            CONTENT_X + CONTENT_WIDTH,
            PROCESS.chip,
        );
        canvas.layer(top, mark, &PROCESS, "process", "ch00, ch09");
    }

    fn draw_rootfs(&self, canvas: &mut Canvas) {
        let r = &self.rootfs;
        let (top, mark) = (canvas.y, canvas.svg.len());
        canvas.y += PADDING;
        // The overlay stack at the left: the upper layer over the lower ones.
        let stack_width = 170.0;
        let mut y = canvas.y;
        canvas.svg += &format!(
            "<text x=\"{CONTENT_X:.1}\" y=\"{:.1}\"><tspan font-family=\"monospace\" \
             font-weight=\"bold\">/</tspan>  {}</text>\n",
            y + 12.0,
            escape(&r.fstype)
        );
        y += LINE + 2.0;
        let mut slabs: Vec<(String, &str)> = Vec::new();
        if r.upper {
            slabs.push(("upper: the container's writes".into(), "#ffffff"));
        }
        let shown = r.lower_layers.min(4);
        for layer in 0..shown {
            let text = match (layer + 1 == shown, r.lower_layers > shown) {
                (true, true) => format!("... {} lower layers in all", r.lower_layers),
                _ => format!("lower {}: the image's, read-only", layer + 1),
            };
            slabs.push((text, "#a5d6a7"));
        }
        for (text, fill) in slabs {
            canvas.svg += &format!(
                "<rect x=\"{CONTENT_X:.1}\" y=\"{y:.1}\" width=\"{stack_width:.1}\" height=\"18\" \
                 fill=\"{fill}\" stroke=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>\n",
                ROOTFS.stroke,
                CONTENT_X + 6.0,
                y + 13.0,
                escape(&text)
            );
            y += 20.0;
        }
        // The other mounts and the counts at the right.
        let right_x = CONTENT_X + stack_width + 14.0;
        let chips: Vec<(String, String)> = r
            .mounts
            .iter()
            .map(|m| {
                let mode = if m.read_only { " ro" } else { "" };
                (format!("{} {}{mode}", m.point, m.fstype), String::new())
            })
            .collect();
        canvas.chips(&chips, right_x, CONTENT_X + CONTENT_WIDTH, ROOTFS.chip);
        let counts = [
            (
                plural(r.masked.len(), "path masked", "paths masked"),
                &r.masked,
            ),
            (format!("{} read-only", r.read_only.len()), &r.read_only),
            (
                plural(r.devices.len(), "host device", "host devices"),
                &r.devices,
            ),
        ];
        let chips: Vec<(String, String)> = counts
            .into_iter()
            .map(|(text, paths)| (text, paths.join(" ")))
            .collect();
        canvas.chips(&chips, right_x, CONTENT_X + CONTENT_WIDTH, "#ffffff");
        canvas.y = canvas.y.max(y);
        canvas.layer(
            top,
            mark,
            &ROOTFS,
            "root filesystem",
            "ch01, ch03, ch08, ch09",
        );
    }

    fn draw_namespaces(&self, canvas: &mut Canvas) {
        let (top, mark) = (canvas.y, canvas.svg.len());
        canvas.y += PADDING;
        let count = self.namespaces.len().max(1) as f64;
        let gap = 6.0;
        let width = (CONTENT_WIDTH - gap * (count - 1.0)) / count;
        for (i, namespace) in self.namespaces.iter().enumerate() {
            let x = CONTENT_X + i as f64 * (width + gap);
            let (fill, stroke, dash, note, color) = match namespace.new {
                true => (NAMESPACES.chip, NAMESPACES.stroke, "", "new", "#000"),
                false => (
                    "#ffffff",
                    "#9e9e9e",
                    " stroke-dasharray=\"4 3\"",
                    "host's",
                    "#757575",
                ),
            };
            canvas.svg += &format!(
                "<g><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"36\" rx=\"4\" \
                 fill=\"{fill}\" stroke=\"{stroke}\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" \
                 text-anchor=\"middle\" font-weight=\"bold\" fill=\"{color}\">{}</text>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" \
                 fill=\"{color}\">{note}</text><title>{} namespace: {}</title></g>\n",
                canvas.y,
                x + width / 2.0,
                canvas.y + 15.0,
                escape(&namespace.kind),
                x + width / 2.0,
                canvas.y + 29.0,
                escape(&namespace.kind),
                match namespace.new {
                    true => "the container's own",
                    false => "shared with the host",
                }
            );
        }
        canvas.y += 42.0;
        let ids = &self.user_namespace;
        let gids = match ids.gid_map == ids.uid_map {
            true => "gids the same".to_string(),
            false => format!("gids {}", ranges(&ids.gid_map)),
        };
        canvas.text(
            &format!(
                "user namespace: uids {} on the host; {gids}",
                ranges(&ids.uid_map)
            ),
            "",
        );
        canvas.layer(
            top,
            mark,
            &NAMESPACES,
            "namespaces",
            "ch02, ch03, ch04, ch05",
        );
    }

    fn draw_cgroups(&self, canvas: &mut Canvas) {
        let c = &self.cgroups;
        let (top, mark) = (canvas.y, canvas.svg.len());
        canvas.y += PADDING;
        let controllers: Vec<String> = c.dirs.iter().map(|d| d.controllers.join(",")).collect();
        let mut paths: Vec<&str> = c.dirs.iter().map(|d| d.path.as_str()).collect();
        paths.dedup();
        let hierarchies = match c.version {
            2 => "one directory".to_string(),
            _ => plural(c.dirs.len(), "hierarchy", "hierarchies"),
        };
        canvas.text(
            &format!(
                "cgroup v{}, {hierarchies}: {}",
                c.version,
                controllers.join(", ")
            ),
            "",
        );
        canvas.text(
            &format!(
                "at .../{} below the runtime's own cgroup",
                paths.join(", .../")
            ),
            " font-family=\"monospace\" font-size=\"10\"",
        );
        canvas.y += 2.0;
        let chips: Vec<(String, String)> = c
            .limits
            .phrases()
            .into_iter()
            .map(|phrase| (phrase, String::new()))
            .collect();
        canvas.chips(&chips, CONTENT_X, CONTENT_X + CONTENT_WIDTH, CGROUPS.chip);
        canvas.layer(top, mark, &CGROUPS, "cgroup", "ch06");
    }
}

fn draw_kernel(canvas: &mut Canvas) {
    let (top, mark) = (canvas.y, canvas.svg.len());
    canvas.y += PADDING;
    for line in [
        "shared by the host and every container: each layer above is one of its settings,",
        "and every system call the process makes still reaches it (chapter 09 narrows which)",
    ] {
        canvas.text(line, " fill=\"#ffffff\"");
    }
    canvas.layer(top, mark, &KERNEL, "kernel", "the host's");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::anatomy::*;

    pub fn anatomy() -> Anatomy {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let range = IdMap {
            inside: 0,
            outside: 100_000,
            count: 65536,
        };
        Anatomy {
            started_with: "ch09-hardening run -d IMAGE /bin/sleep 86400".into(),
            process: Process {
                command: names(&["/bin/sleep", "86400"]),
                pid_inside: 2,
                uid_inside: 0,
                uid_host: 100_000,
                gid_inside: 0,
                gid_host: 100_000,
                effective: names(&["CAP_CHOWN", "CAP_KILL"]),
                bounding: names(&["CAP_CHOWN", "CAP_KILL"]),
                seccomp: 2,
                no_new_privs: true,
            },
            rootfs: RootFs {
                fstype: "overlay".into(),
                lower_layers: 6,
                upper: true,
                mounts: vec![MountFact {
                    point: "/proc".into(),
                    fstype: "proc".into(),
                    read_only: false,
                }],
                masked: names(&["/proc/keys", "/sys/firmware"]),
                read_only: names(&["/proc/sys"]),
                devices: names(&["/dev/null"]),
            },
            namespaces: ["mnt", "pid", "cgroup"]
                .iter()
                .map(|kind| Namespace {
                    kind: kind.to_string(),
                    new: *kind != "cgroup",
                })
                .collect(),
            user_namespace: IdMaps {
                uid_map: vec![range],
                gid_map: vec![range],
            },
            cgroups: Cgroups {
                version: 2,
                dirs: vec![CgroupDir {
                    hierarchy: "/sys/fs/cgroup".into(),
                    controllers: names(&["memory", "pids"]),
                    path: "container-lab-<container>".into(),
                }],
                limits: Limits {
                    memory_bytes: Some(64 << 20),
                    pids: Some(64),
                    cpu_quota_us: None,
                    cpu_period_us: None,
                },
            },
        }
    }

    #[test]
    fn every_layer_is_drawn_with_its_facts() {
        let svg = anatomy().svg();
        for wanted in [
            "/bin/sleep 86400",
            "PID 2 inside, under the lab's init",
            "uid 0 inside = uid 100000 on the host (gid the same)",
            "2 capabilities of 2 in its bounding set:",
            ">CHOWN<",
            "seccomp filter (mode 2)",
            ">no_new_privs<",
            "lower 1: the image",
            "... 6 lower layers in all",
            "upper: the container",
            "/proc proc",
            "2 paths masked",
            "<title>/proc/keys /sys/firmware</title>",
            "1 read-only",
            "1 host device<",
            "cgroup v2, one directory: memory,pids",
            ".../container-lab-&lt;container&gt;",
            "memory 64 MiB",
            "cpu: no limit",
            "uids 0-65535 → 100000-165535 on the host; gids the same",
            ">kernel<",
            "every system call the process makes still reaches it",
        ] {
            assert!(svg.contains(wanted), "no {wanted:?} in\n{svg}");
        }
        assert_eq!(
            svg.matches("<title>mnt namespace: the container").count(),
            1
        );
        assert_eq!(
            svg.matches("<title>cgroup namespace: shared with the host")
                .count(),
            1
        );
    }

    #[test]
    fn it_fits_the_page_and_needs_nothing_from_elsewhere() {
        let svg = anatomy().svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"680\""));
        assert!(svg.contains("role=\"img\" aria-label=\"A chapter 09 container in layers"));
        assert!(svg.contains("new mnt, pid namespaces, the host's cgroup;"));
        for outside in ["<image", "href", "@import", "url("] {
            assert!(!svg.contains(outside), "{outside} in the picture");
        }
        // Every element that opens closes.
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert_eq!(svg.matches("<g>").count(), svg.matches("</g>").count());
        // Nothing is drawn past the right edge.
        for x in svg.split(" x=\"").skip(1) {
            let x: f64 = x.split('"').next().unwrap().parse().unwrap();
            assert!(x < 680.0, "x={x}");
        }
    }

    #[test]
    fn text_escapes_and_wraps() {
        let mut anatomy = anatomy();
        anatomy.process.command = vec!["/bin/sh".into(), "-c".into(), "a && b <c>".into()];
        assert!(
            anatomy
                .svg()
                .contains("/bin/sh -c a &amp;&amp; b &lt;c&gt;")
        );
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
    }
}
