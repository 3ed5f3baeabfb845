//! What a person sees while strata works: bars on a terminal, one line per
//! step in logs and CI, or nothing. Library code reports steps through the
//! handle the command line installs here; without one (unit tests, other
//! callers) steps are plain lines, so nothing in the library depends on it.
//! `-v` logs go through the same handle, so they never tear a bar.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How steps are shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bars when stderr is a terminal that can draw them, else lines.
    Auto,
    Tty,
    Plain,
    Off,
}

/// A cheap handle on the output: clones share the same bars.
#[derive(Clone)]
pub struct Progress {
    draw: Draw,
    /// `-q`: messages are dropped too; only errors remain.
    quiet: bool,
    color: bool,
}

#[derive(Clone)]
enum Draw {
    Bars(MultiProgress),
    Lines,
    Hidden,
}

static GLOBAL: OnceLock<Progress> = OnceLock::new();

/// Makes `p` the handle [`get`] returns. The first call wins: the command
/// line installs one before any work starts.
pub fn install(p: Progress) {
    let _ = GLOBAL.set(p);
}

pub fn get() -> &'static Progress {
    GLOBAL.get_or_init(|| Progress::new(Mode::Plain, false))
}

/// `NO_COLOR` set to anything but the empty string (<https://no-color.org>).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Whether indicatif would draw on stderr: a terminal, and a `TERM` that
/// knows cursor movement.
fn stderr_draws() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var("TERM").is_ok_and(|t| !t.is_empty() && t != "dumb")
}

impl Progress {
    pub fn new(mode: Mode, quiet: bool) -> Progress {
        let draw = match mode {
            _ if quiet => Draw::Hidden,
            Mode::Off => Draw::Hidden,
            Mode::Plain => Draw::Lines,
            Mode::Auto if !stderr_draws() => Draw::Lines,
            Mode::Auto => Draw::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            // Asked for by name: draw even where indicatif would hide the
            // bars (a pipe, `TERM=dumb`).
            Mode::Tty => Draw::Bars(MultiProgress::with_draw_target(
                ProgressDrawTarget::term_like_with_hz(
                    Box::new(console::Term::buffered_stderr()),
                    20,
                ),
            )),
        };
        Progress {
            draw,
            quiet,
            color: !no_color(),
        }
    }

    /// Starts a step of `phase` (`resolve`, `download`, `install`,
    /// `compress`, `push`) about `message` (a file, a layer).
    pub fn step(&self, phase: &'static str, message: impl Into<String>) -> Step {
        let message = message.into();
        let out = match &self.draw {
            Draw::Hidden => Out::Hidden,
            Draw::Lines => {
                eprintln!("{phase} {message}");
                Out::Line
            }
            Draw::Bars(mp) => {
                let bytes = matches!(phase, "download" | "push");
                let bar = mp.add(
                    ProgressBar::no_length()
                        .with_style(style(bytes, self.color))
                        .with_prefix(phase)
                        .with_message(message.clone()),
                );
                // Drawn at once: a step shorter than a tick still shows.
                bar.tick();
                if !bytes {
                    // A spinner shows that a long step is alive between updates.
                    bar.enable_steady_tick(Duration::from_millis(100));
                }
                Out::Bar(bar, mp.clone())
            }
        };
        Step(Arc::new(StepState {
            phase,
            message,
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            out,
        }))
    }

    /// A message for the user (a summary line) on stderr, unless `-q`.
    pub fn println(&self, line: impl AsRef<str>) {
        if !self.quiet {
            self.suspend(|| eprintln!("{}", line.as_ref()));
        }
    }

    /// Runs `f` with the bars taken off the screen, for anything else that
    /// writes to stderr (errors, logs).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.draw {
            Draw::Bars(mp) => mp.suspend(f),
            Draw::Lines | Draw::Hidden => f(),
        }
    }
}

fn style(bytes: bool, color: bool) -> ProgressStyle {
    let template = match (bytes, color) {
        (true, true) => {
            "{prefix:>9.cyan.bold} {msg:30!} {wide_bar:.cyan/blue} {bytes:>9}/{total_bytes:<9} {binary_bytes_per_sec:>11}"
        }
        (true, false) => {
            "{prefix:>9} {msg:30!} {wide_bar} {bytes:>9}/{total_bytes:<9} {binary_bytes_per_sec:>11}"
        }
        (false, true) => "{prefix:>9.cyan.bold} {spinner:.green} {msg} {elapsed:.dim}",
        (false, false) => "{prefix:>9} {spinner} {msg} {elapsed}",
    };
    ProgressStyle::with_template(template)
        .expect("the templates are constant and valid")
        .progress_chars("=> ")
}

/// One step under way; clones report to the same step. Dropping every clone
/// without [`Step::finish`] (an error) takes its bar away silently.
#[derive(Clone)]
pub struct Step(Arc<StepState>);

struct StepState {
    phase: &'static str,
    message: String,
    started: Instant,
    bytes: AtomicU64,
    finished: AtomicBool,
    out: Out,
}

enum Out {
    Bar(ProgressBar, MultiProgress),
    Line,
    Hidden,
}

impl Step {
    /// `n` more bytes done.
    pub fn inc(&self, n: u64) {
        self.0.bytes.fetch_add(n, Ordering::Relaxed);
        if let Out::Bar(bar, _) = &self.0.out {
            bar.inc(n);
        }
    }

    pub fn set_length(&self, total: u64) {
        if let Out::Bar(bar, _) = &self.0.out {
            bar.set_length(total);
        }
    }

    /// Back to `n` bytes, as when a download is retried from the start.
    pub fn set_position(&self, n: u64) {
        self.0.bytes.store(n, Ordering::Relaxed);
        if let Out::Bar(bar, _) = &self.0.out {
            bar.set_position(n);
        }
    }

    /// Ends the step; `note` (`cached`, `mounted`) goes on its line beside
    /// the bytes counted. Finishing twice does nothing.
    pub fn finish(&self, note: &str) {
        let s = &self.0;
        if s.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        match &s.out {
            // Finished bars leave the screen: at the end of a build the
            // summary is the last thing on it.
            Out::Bar(bar, mp) => {
                bar.finish_and_clear();
                mp.remove(bar);
            }
            Out::Line => {
                let bytes = s.bytes.load(Ordering::Relaxed);
                let details: Vec<String> = (bytes > 0)
                    .then(|| size(bytes))
                    .into_iter()
                    .chain((!note.is_empty()).then(|| note.to_owned()))
                    .collect();
                let details = match details.as_slice() {
                    [] => String::new(),
                    parts => format!(" ({})", parts.join(", ")),
                };
                eprintln!(
                    "{} {}{details} done in {:.2}s",
                    s.phase,
                    s.message,
                    s.started.elapsed().as_secs_f64()
                );
            }
            Out::Hidden => {}
        }
    }
}

impl Drop for StepState {
    fn drop(&mut self) {
        if let Out::Bar(bar, mp) = &self.out
            && !self.finished.load(Ordering::Relaxed)
        {
            bar.finish_and_clear();
            mp.remove(bar);
        }
    }
}

/// Bytes as people read them: `512 B`, `1.2 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Where `-v` logs go: stderr, with the bars lifted while a line is written.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        get().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends strata's tracing events to stderr: `-v` info, `-vv` and more debug.
/// Other crates' events stay out: they describe HTTP internals, not the build.
pub fn init_logs(verbosity: u8) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match verbosity {
        0 => return,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    let ansi = !no_color() && std::io::stderr().is_terminal();
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| LogWriter)
                .with_ansi(ansi)
                .with_timer(tracing_subscriber::fmt::time::uptime()),
        )
        .with(tracing_subscriber::filter::Targets::new().with_target("strata", level))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(1_258_291), "1.2 MiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn hidden_steps_count_and_finish_once() {
        let p = Progress::new(Mode::Off, false);
        let step = p.step("download", "x.deb");
        step.set_length(10);
        step.inc(4);
        step.clone().inc(6);
        assert_eq!(step.0.bytes.load(Ordering::Relaxed), 10);
        step.set_position(0);
        assert_eq!(step.0.bytes.load(Ordering::Relaxed), 0);
        step.finish("");
        step.finish("");
        assert!(step.0.finished.load(Ordering::Relaxed));
    }
}
