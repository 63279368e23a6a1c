//! The Environment Abstraction Layer: initialised once per process, with the EAL arguments passed through
//! as the user gave them (`-l`, `--vdev`, `--no-huge`, `--file-prefix`, …), and the launching of work on
//! worker lcores.
//!
//! Thread-safety: `Eal` is a zero-sized token that proves `rte_eal_init` succeeded; it is `Copy`, `Send`
//! and `Sync`. Launching is the [`MainLcore`]'s, a token that only the thread that ran [`Eal::init`] can
//! get and that cannot leave it (neither `Send` nor `Sync`), because DPDK 22.11's launch calls must not
//! race: `rte_eal_remote_launch` is documented "main lcore only" and, in its code, checks that the lcore
//! waits and then stores the function and its argument with no lock, so two callers on one lcore could both
//! pass the check and the worker run one's function on the other's argument. Neither it nor
//! `rte_eal_wait_lcore` checks the lcore id (`lcore_config[id]`, out of bounds past `RTE_MAX_LCORE`), and
//! on the main or a disabled lcore there is no worker thread to wake (its pipe descriptors are 0, stdin):
//! [`MainLcore::launch`] launches on enabled worker lcores only. A launch returns a [`Launched`] handle,
//! `Send`, that waits for the function's end from any thread without calling DPDK (the trampoline reports
//! it), and waits for it when dropped: a launched function never outlives its handle.
//!
//! [`EalArgs`] are the arguments as given, with the few of them the process reads itself (the file
//! prefix, the `--vdev` devargs); [`Eal::cleanup`] also removes the runtime directory DPDK leaves behind.

use std::cell::RefCell;
use std::ffi::{c_int, c_void, CStr, CString};
use std::marker::PhantomData;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::error::{DpdkError, Errno, Result};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that the EAL is up. Get one with [`Eal::init`].
#[derive(Clone, Copy, Debug)]
pub struct Eal {
    _private: (),
}

/// An EAL logical core id, as in `-l 0-3`.
pub type Lcore = u32;

impl Eal {
    /// Runs `rte_eal_init` with `program` as argv\[0] and `args` after it. Succeeds once per process;
    /// a second call returns [`DpdkError::EalAlreadyInitialised`].
    pub fn init<S: AsRef<str>>(program: &str, args: &[S]) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyInitialised);
        }
        let mut owned = Vec::with_capacity(args.len() + 1);
        for a in std::iter::once(program).chain(args.iter().map(AsRef::as_ref)) {
            let c = CString::new(a).map_err(|_| DpdkError::EalArgument(a.to_owned()))?;
            owned.push(c);
        }
        // The EAL may keep pointers into argv for the life of the process: leak it, once per process.
        let owned: &'static [CString] = Box::leak(owned.into_boxed_slice());
        let mut argv: Vec<*mut std::ffi::c_char> = owned.iter().map(|c| c.as_ptr().cast_mut()).collect();
        argv.push(std::ptr::null_mut());
        let argv: &'static mut [*mut std::ffi::c_char] = Box::leak(argv.into_boxed_slice());
        let argc = (argv.len() - 1) as c_int;
        // SAFETY: argv holds argc valid NUL-terminated strings followed by NULL, all leaked ('static), and
        // this is the only call in the process (guarded by INITIALISED).
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(DpdkError::EalInit(Errno::last()));
        }
        Ok(Eal { _private: () })
    }

    /// The main lcore (the thread that ran `init`).
    pub fn main_lcore(&self) -> Lcore {
        // SAFETY: the EAL is initialised (self exists).
        unsafe { dpdk_sys::rte_get_main_lcore() }
    }

    /// The worker lcores enabled by `-l`/`-c`, in increasing order, without the main lcore.
    pub fn worker_lcores(&self) -> Vec<Lcore> {
        let mut out = Vec::new();
        // SAFETY: the EAL is initialised; rte_get_next_lcore only reads its lcore table.
        let mut i = unsafe { dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while i < dpdk_sys::RTE_MAX_LCORE {
            out.push(i);
            // SAFETY: as above.
            i = unsafe { dpdk_sys::rte_get_next_lcore(i, 1, 0) };
        }
        out
    }

    /// The calling thread's lcore id, or `None` on a thread the EAL does not know.
    pub fn current_lcore() -> Option<Lcore> {
        // SAFETY: reads a thread-local; valid on any thread.
        let id = unsafe { dpdk_sys::vs_rte_lcore_id() };
        (id != u32::MAX).then_some(id)
    }

    /// The TSC frequency, to turn [`rdtsc`] differences into time.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: the EAL is initialised (it calibrates the TSC in init).
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }

    /// The EAL's runtime directory (`/var/run/dpdk/<file prefix>` as root, else under
    /// `$XDG_RUNTIME_DIR/dpdk` or `/tmp/dpdk`): its config, its multi-process and telemetry sockets.
    pub fn runtime_dir(&self) -> PathBuf {
        // SAFETY: the EAL is initialised (self exists); rte_eal_get_runtime_dir returns a pointer to the EAL's
        // static NUL-terminated path, set once by rte_eal_init.
        let dir = unsafe { CStr::from_ptr(dpdk_sys::rte_eal_get_runtime_dir()) };
        PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()))
    }

    /// `rte_eal_cleanup`: releases hugepages and the EAL's threads; then, in a primary process, removes the
    /// runtime directory ([`Eal::runtime_dir`]), which DPDK leaves behind. Every port must be closed and
    /// every mempool freed before; nothing of DPDK may be used after.
    ///
    /// # Safety
    /// No DPDK object (port, queue, mempool, mbuf, ring, [`MainLcore`]) may be used after this call, and
    /// no function launched on a worker lcore may still be running: every [`Launched`] handle has been
    /// joined or dropped (which waits), so nothing that DPDK frees here is in use on a worker.
    pub unsafe fn cleanup(self) -> i32 {
        // SAFETY: the EAL is initialised and not cleaned up yet (self is consumed here); a plain read.
        let primary = unsafe { dpdk_sys::rte_eal_process_type() } == dpdk_sys::rte_proc_type_t_RTE_PROC_PRIMARY;
        let dir = self.runtime_dir();
        // SAFETY: the caller promises nothing of DPDK is used after this, nor while it runs.
        let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
        if primary {
            remove_runtime_dir(&dir);
        }
        ret
    }
}

/// Removes a runtime directory of the shape DPDK makes (`<base>/dpdk/<file prefix>`), nothing else: a
/// secondary process never calls this (the directory is its primary's).
fn remove_runtime_dir(dir: &Path) {
    let mut parts = dir.components().rev();
    let shaped = matches!(parts.next(), Some(Component::Normal(_)))
        && matches!(parts.next(), Some(Component::Normal(d)) if d == "dpdk")
        && dir.is_absolute();
    if shaped {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// EAL arguments as the user gives them (`-l 0-1 --no-huge --file-prefix df0 --vdev=net_null0 …`): passed
/// to [`Eal::init`] untouched, and read here for the few things the process needs beside the EAL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EalArgs(Vec<String>);

impl EalArgs {
    pub fn new<S: Into<String>>(args: impl IntoIterator<Item = S>) -> EalArgs {
        EalArgs(args.into_iter().map(Into::into).collect())
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The value of `--file-prefix X` or `--file-prefix=X`, if given (DPDK's own default is `rte`).
    pub fn file_prefix(&self) -> Option<&str> {
        let mut it = self.0.iter();
        while let Some(a) = it.next() {
            if a == "--file-prefix" {
                return it.next().map(String::as_str);
            }
            if let Some(v) = a.strip_prefix("--file-prefix=") {
                return Some(v);
            }
        }
        None
    }

    /// The devargs of every `--vdev=X` and `--vdev X`, in order.
    pub fn vdevs(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut it = self.0.iter();
        while let Some(a) = it.next() {
            if let Some(d) = a.strip_prefix("--vdev=") {
                out.push(d);
            } else if a == "--vdev" {
                out.extend(it.next().map(String::as_str));
            }
        }
        out
    }
}

impl AsRef<[String]> for EalArgs {
    fn as_ref(&self) -> &[String] {
        &self.0
    }
}

thread_local! {
    /// Per lcore, the end of the last function launched there, kept by the main lcore's thread (the only
    /// one that launches). Whether that function has returned decides busy or not before DPDK is called:
    /// DPDK counts a lcore `RUNNING` a few instructions past the function's return, which is not busy.
    static LAST_LAUNCH: RefCell<Vec<Option<Arc<Finish>>>> =
        RefCell::new(vec![None; dpdk_sys::RTE_MAX_LCORE as usize]);
}

/// The main lcore's capability: launching functions on worker lcores and waiting for them there. Only the
/// thread that ran [`Eal::init`] gets one ([`MainLcore::here`]), and it cannot leave that thread, so DPDK's
/// launch calls never run on two threads at once.
///
/// ```no_run
/// let eal = dpdk::Eal::init("demo", &["-l", "0-1", "--no-huge", "--no-pci", "--file-prefix", "demo"]).unwrap();
/// let main = dpdk::MainLcore::here(&eal).unwrap();
/// let job = main.launch(1, || 7).unwrap();
/// assert_eq!(job.join(), 7);
/// ```
///
/// The token cannot be sent to another thread:
/// ```compile_fail,E0277
/// let eal = dpdk::Eal::init("demo", &["-l", "0-1", "--no-huge", "--no-pci", "--file-prefix", "demo"]).unwrap();
/// let main = dpdk::MainLcore::here(&eal).unwrap();
/// std::thread::spawn(move || main.launch(1, || 7).map(dpdk::Launched::join));
/// ```
///
/// nor shared with one:
/// ```compile_fail,E0277
/// let eal = dpdk::Eal::init("demo", &["-l", "0-1", "--no-huge", "--no-pci", "--file-prefix", "demo"]).unwrap();
/// let main = dpdk::MainLcore::here(&eal).unwrap();
/// std::thread::scope(|s| {
///     s.spawn(|| main.launch(1, || 7).map(dpdk::Launched::join));
/// });
/// ```
pub struct MainLcore {
    eal: Eal,
    /// Neither `Send` nor `Sync`.
    _main_thread_only: PhantomData<*const ()>,
}

impl std::fmt::Debug for MainLcore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainLcore").field("lcore", &self.eal.main_lcore()).finish()
    }
}

/// What a launch hands the trampoline: the function and where to report its end.
struct Job<F> {
    f: F,
    finish: Arc<Finish>,
}

/// A launched function's result, once it has returned.
#[derive(Default)]
struct Finish {
    result: Mutex<Option<i32>>,
    done: Condvar,
}

impl MainLcore {
    /// The token, if the calling thread is the main lcore (the one that ran [`Eal::init`]).
    pub fn here(eal: &Eal) -> Result<MainLcore> {
        let main = eal.main_lcore();
        match Eal::current_lcore() {
            Some(l) if l == main => Ok(MainLcore { eal: *eal, _main_thread_only: PhantomData }),
            current => Err(DpdkError::NotMainLcore { main, current }),
        }
    }

    pub fn eal(&self) -> Eal {
        self.eal
    }

    /// `lcore` if it is an enabled worker lcore (not the main one): the only ids DPDK's launch calls may
    /// be given (they index `lcore_config` unchecked and need the lcore's worker thread).
    fn worker(&self, lcore: Lcore) -> Result<Lcore> {
        // SAFETY: the EAL is initialised; rte_lcore_is_enabled checks the id against RTE_MAX_LCORE itself.
        let enabled = unsafe { dpdk_sys::rte_lcore_is_enabled(lcore) } == 1;
        if enabled && lcore != self.eal.main_lcore() {
            Ok(lcore)
        } else {
            Err(DpdkError::NotAWorkerLcore(lcore))
        }
    }

    /// Runs `f` on worker lcore `lcore`; the handle waits for it. A lcore runs one function at a time:
    /// launching on one that is still busy is [`DpdkError::LcoreBusy`] (and `f` is dropped unrun).
    pub fn launch<F>(&self, lcore: Lcore, f: F) -> Result<Launched>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        unsafe extern "C" fn trampoline<F: FnOnce() -> i32>(arg: *mut c_void) -> c_int {
            // SAFETY: arg is the Box<Job<F>> leaked by `launch` for exactly this call; it is taken back once.
            let Job { f, finish } = *unsafe { Box::from_raw(arg.cast::<Job<F>>()) };
            let ret = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(-1);
            finish.report(ret);
            ret
        }
        let lcore = self.worker(lcore)?;
        let last = LAST_LAUNCH.with(|l| l.borrow()[lcore as usize].as_ref().map(|f| f.is_done()));
        match last {
            Some(false) => return Err(DpdkError::LcoreBusy(lcore)),
            // Returned: DPDK frees the lcore within a few instructions.
            Some(true) => drop(self.wait(lcore)?),
            None => {}
        }
        let finish = Arc::new(Finish::default());
        let arg = Box::into_raw(Box::new(Job { f, finish: finish.clone() })).cast::<c_void>();
        // SAFETY: trampoline::<F> matches lcore_function_t and takes ownership of arg exactly once; lcore is
        // an enabled worker lcore; this is the main lcore's thread (the token is neither Send nor Sync), so no
        // other launch races this one.
        let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline::<F>), arg, lcore) };
        match ret {
            0 => {
                LAST_LAUNCH.with(|l| l.borrow_mut()[lcore as usize] = Some(finish.clone()));
                Ok(Launched { lcore, finish })
            }
            e if e == -libc::EBUSY => {
                // SAFETY: DPDK returns EBUSY before it stores the function: the trampoline never runs, so the
                // job is still ours.
                drop(unsafe { Box::from_raw(arg.cast::<Job<F>>()) });
                Err(DpdkError::LcoreBusy(lcore))
            }
            // EPIPE: the worker may or may not have been woken with the job; it is left to the trampoline
            // (leaked if it never runs), never freed here.
            e => Err(DpdkError::Lcore { lcore, call: "rte_eal_remote_launch", errno: Errno::from_ret(e) }),
        }
    }

    /// Whether DPDK counts worker lcore `lcore` as running a function.
    pub fn is_running(&self, lcore: Lcore) -> Result<bool> {
        let lcore = self.worker(lcore)?;
        // SAFETY: a valid worker lcore id; this thread is the main lcore.
        Ok(unsafe { dpdk_sys::rte_eal_get_lcore_state(lcore) } == dpdk_sys::rte_lcore_state_t_RUNNING)
    }

    /// Waits until DPDK counts `lcore` free again (`rte_eal_wait_lcore`) and returns what its last function
    /// returned (-1 if it panicked, 0 if none ran). [`Launched::join`] waits for the function itself.
    pub fn wait(&self, lcore: Lcore) -> Result<i32> {
        let lcore = self.worker(lcore)?;
        // SAFETY: a valid worker lcore id; this thread is the main lcore.
        Ok(unsafe { dpdk_sys::rte_eal_wait_lcore(lcore) })
    }
}

/// A function launched on a worker lcore ([`MainLcore::launch`]). `Send`, not `Clone`: any one thread may
/// wait for it. Dropping the handle waits too, so make the function return first (a stop flag).
#[must_use = "dropping a Launched waits for the function to return"]
pub struct Launched {
    lcore: Lcore,
    finish: Arc<Finish>,
}

impl std::fmt::Debug for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launched").field("lcore", &self.lcore).field("finished", &self.is_finished()).finish()
    }
}

impl Finish {
    fn report(&self, ret: i32) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(ret);
        self.done.notify_all();
    }

    fn is_done(&self) -> bool {
        self.result.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    fn wait(&self) -> i32 {
        let mut r = self.result.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(ret) = *r {
                return ret;
            }
            r = self.done.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Launched {
    /// The worker lcore the function runs on.
    pub fn lcore(&self) -> Lcore {
        self.lcore
    }

    /// Whether the function has returned (its captures dropped).
    pub fn is_finished(&self) -> bool {
        self.finish.is_done()
    }

    /// Waits for the function to return; its return value, -1 if it panicked.
    pub fn join(self) -> i32 {
        self.finish.wait()
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.finish.wait();
    }
}

/// The time-stamp counter (`rte_rdtsc`), in cycles of [`Eal::tsc_hz`].
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is available on every x86_64 CPU and has no memory effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: no preconditions.
        unsafe { dpdk_sys::vs_rte_rdtsc() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_prefix_in_both_spellings() {
        assert_eq!(EalArgs::new(["-l", "0", "--file-prefix", "a"]).file_prefix(), Some("a"));
        assert_eq!(EalArgs::new(["--file-prefix=b", "--no-huge"]).file_prefix(), Some("b"));
        assert_eq!(EalArgs::new(["--no-huge"]).file_prefix(), None);
    }

    #[test]
    fn vdevs_in_both_spellings() {
        let args = EalArgs::new(["-l", "0-1", "--vdev=net_null0", "--vdev", "net_pcap0,rx_pcap=a", "--vdev"]);
        assert_eq!(args.vdevs(), ["net_null0", "net_pcap0,rx_pcap=a"]);
    }

    #[test]
    fn only_a_runtime_directory_of_dpdk_shape_is_removed() {
        let base = std::env::temp_dir().join(format!("df-eal-rtdir-{}", std::process::id()));
        let (ours, other) = (base.join("dpdk").join("p"), base.join("elsewhere"));
        for d in [&ours, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        remove_runtime_dir(&other);
        remove_runtime_dir(&base.join("dpdk").join(".."));
        assert!(other.exists() && ours.exists());
        remove_runtime_dir(&ours);
        assert!(!ours.exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
