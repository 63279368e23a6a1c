//! The life of a process that runs a dataplane, the same for every role that does (`run`, `node`,
//! `all-in-one`): logging, the signals, the EAL from init to cleanup, the main thread's loop while the
//! dataplane runs (latency collected, retired tables freed, counter lines, the stats JSON), and the final
//! report. A role brings what is its own: its dataplane options, its tables, its threads.
//!
//! ```text
//! let life = Lifecycle::start(&log, &switch, StatsJson::AtExit)?;    // logging, signals
//! unsafe { life.with_eal(&eal_args, |main| {                          // EAL init .. cleanup
//!     let dp = Mutex::new(Dataplane::start(main, &opts, tables)?);
//!     life.watch(&dp, |dp| { /* SIGHUP */ });                         // until SIGINT/SIGTERM/--duration
//!     life.finish(dp.into_inner()?)                                   // report, JSON, mbuf check
//! }) }
//! ```
//!
//! Threads: the thread that calls [`Lifecycle::start`] runs the EAL's init, so it is the main lcore, and
//! [`Lifecycle::watch`]. SIGINT, SIGTERM and SIGHUP are blocked in it before the EAL starts its threads
//! (they inherit the mask, as does every thread a role starts later) and unblocked in the `signals` thread
//! only, so they never land on a DPDK thread, whose calls SA_RESTART does not always restart (epoll_wait
//! in the EAL's interrupt thread). SIGINT and SIGTERM set the stop flag from the handler itself; every
//! signal is also passed to the main loop on a channel (SIGHUP is a role's reload). The stop flag is
//! shared: the signal handler and a role's threads set it (an API that fails stops the node), the main
//! loop and the role's threads read it; nothing else is shared here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dataplane::{Dataplane, Report};
use dpdk::{EalArgs, MainLcore};

use crate::config::{LogConfig, SwitchArgs};
use crate::stats_log::{self, StatsLog};

/// When `--stats-json` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsJson {
    /// Once, the final report (the `run` role: a benchmark reads it after the run).
    AtExit,
    /// Every second and at exit (the node roles: a long-running node is watched while it runs).
    EverySecond,
}

/// A dataplane process between its start and its exit.
///
/// Thread-safety: used by the main thread only; of its state only the stop flag is shared (see the
/// module's doc), and the signal channel's sender belongs to the `signals` thread.
pub struct Lifecycle {
    stop: Arc<AtomicBool>,
    signals: Receiver<i32>,
    stats_interval: Duration,
    duration: Option<f64>,
    stats_json: Option<PathBuf>,
    json_every_second: bool,
}

impl Lifecycle {
    /// Starts logging at `log.level` and takes the signals, before anything else starts a thread.
    pub fn start(log: &LogConfig, switch: &SwitchArgs, json: StatsJson) -> Result<Lifecycle> {
        let filter =
            tracing_subscriber::EnvFilter::try_new(&log.level).with_context(|| format!("log level {:?}", log.level))?;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init();
        // Signal handlers first: the EAL installs none.
        set_signal_mask(libc::SIG_BLOCK);
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
        }
        Ok(Lifecycle {
            stop,
            signals: signal_events()?,
            stats_interval: Duration::from_secs(log.stats_interval),
            duration: switch.duration,
            stats_json: switch.stats_json.clone(),
            json_every_second: json == StatsJson::EverySecond,
        })
    }

    /// Set on SIGINT and SIGTERM; a role sets it to stop the process.
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.stop
    }

    /// Initialises the EAL with `args`, runs `body` on the main lcore, and cleans the EAL up (its runtime
    /// directory too) whatever `body` returned.
    ///
    /// # Safety
    /// When `body` returns, nothing of DPDK that it made is left (ports, queues, mempools, mbufs: a
    /// [`Dataplane`] shut down or dropped, which joins its workers) and nothing it launched on a worker
    /// lcore still runs: [`dpdk::Eal::cleanup`]'s contract.
    pub unsafe fn with_eal<T>(&self, args: &EalArgs, body: impl FnOnce(&MainLcore) -> Result<T>) -> Result<T> {
        tracing::info!(version = %dpdk::version(), eal = ?args.as_slice(), "starting the EAL");
        let eal = dpdk::Eal::init("dragonflow", args.as_slice())?;
        let outcome = MainLcore::here(&eal).map_err(anyhow::Error::from).and_then(|main| body(&main));
        // SAFETY: the caller promises that `body` left nothing of DPDK and no running launch; the MainLcore
        // token went with it.
        unsafe { eal.cleanup() };
        outcome
    }

    /// The main thread while the dataplane runs, until SIGINT/SIGTERM, the stop flag or `--duration`:
    /// every second the workers' latency is collected, retired tables freed and link changes logged (and
    /// the stats JSON written, [`StatsJson::EverySecond`]); counter lines every `[log] stats_interval`;
    /// `on_hup` on each SIGHUP.
    pub fn watch(&self, dp: &Mutex<Dataplane>, mut on_hup: impl FnMut(&mut Dataplane)) {
        let started = Instant::now();
        let deadline = self.duration.map(|s| started + Duration::from_secs_f64(s.max(0.0)));
        let interval = self.stats_interval;
        let mut next_stats = started + interval;
        let mut next_second = started + Duration::from_secs(1);
        let mut stats = StatsLog::default();
        while !self.stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
            if let Ok(signal_hook::consts::SIGHUP) = self.signals.recv_timeout(Duration::from_millis(50)) {
                let mut dp = dp.lock().expect("poisoned");
                on_hup(&mut dp);
                dp.reclaim();
            }
            let now = Instant::now();
            if now >= next_second {
                let mut dp = dp.lock().expect("poisoned");
                dp.collect_latency();
                dp.reclaim();
                dp.poll_links();
                if self.json_every_second {
                    let _ = self.write_json(&dp.report());
                }
                next_second = now + Duration::from_secs(1);
            }
            if !interval.is_zero() && now >= next_stats {
                stats.tick(&dp.lock().expect("poisoned").report());
                next_stats = now + interval;
            }
        }
    }

    /// Stops the dataplane and reports: the last latency, the shutdown (every port closed), the whole
    /// report in the log and in the stats JSON; an error if mbufs did not come back to the pool.
    pub fn finish(&self, mut dp: Dataplane) -> Result<Report> {
        dp.collect_latency();
        let report = dp.shutdown();
        stats_log::full(&report);
        self.write_json(&report)?;
        if report.mempool.in_use != 0 {
            bail!("{} mbufs did not come back to the pool after the ports were closed", report.mempool.in_use);
        }
        Ok(report)
    }

    /// Writes the report to `--stats-json`, whole or not at all (a reader never sees half a file).
    fn write_json(&self, r: &Report) -> Result<()> {
        let Some(path) = &self.stats_json else {
            return Ok(());
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(r)?)
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("{}", path.display()))
    }
}

/// Signals the main loop waits on: SIGINT/SIGTERM (stop, also set in the `stop` flag) and SIGHUP (reload).
fn signal_events() -> Result<Receiver<i32>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).context("signal handlers")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        set_signal_mask(libc::SIG_UNBLOCK);
        for s in signals.forever() {
            if tx.send(s).is_err() {
                break;
            }
        }
    })?;
    Ok(rx)
}

/// Blocks or unblocks SIGINT, SIGTERM and SIGHUP in the calling thread (see the module's doc).
fn set_signal_mask(how: libc::c_int) {
    // SAFETY: a sigset_t is plain data, initialised by sigemptyset before use; pthread_sigmask changes only
    // the calling thread's mask and accepts a null old-set pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}
