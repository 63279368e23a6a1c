//! The Environment Abstraction Layer: initialised once per process, with the EAL arguments passed through
//! as the user gave them (`-l`, `--vdev`, `--no-huge`, `--file-prefix`, …).
//!
//! Thread-safety: `Eal` is a zero-sized token that proves `rte_eal_init` succeeded; it is `Copy`, `Send`
//! and `Sync`. Launching work on worker lcores and waiting for it is done from the main lcore only (the
//! thread that called [`Eal::init`]), as DPDK requires.

use std::ffi::{c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};

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

    /// Runs `f` on worker lcore `lcore`. Call from the main lcore; collect the result with [`Eal::wait`].
    pub fn launch<F>(&self, lcore: Lcore, f: F) -> Result<()>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        unsafe extern "C" fn trampoline<F: FnOnce() -> i32>(arg: *mut c_void) -> c_int {
            // SAFETY: arg is the Box<F> leaked by `launch` for exactly this call; it is taken back once.
            let f = unsafe { Box::from_raw(arg.cast::<F>()) };
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(-1)
        }
        let arg = Box::into_raw(Box::new(f)).cast::<c_void>();
        // SAFETY: trampoline::<F> matches lcore_function_t and takes ownership of arg exactly once.
        let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline::<F>), arg, lcore) };
        if ret != 0 {
            // SAFETY: the launch failed, so the trampoline never runs: reclaim the closure.
            drop(unsafe { Box::from_raw(arg.cast::<F>()) });
            return Err(DpdkError::Lcore { lcore, call: "rte_eal_remote_launch", errno: Errno::from_ret(ret) });
        }
        Ok(())
    }

    /// Waits for the function launched on `lcore` and returns its result (-1 if it panicked).
    pub fn wait(&self, lcore: Lcore) -> i32 {
        // SAFETY: the EAL is initialised; waiting on an idle lcore returns at once.
        unsafe { dpdk_sys::rte_eal_wait_lcore(lcore) }
    }

    /// The TSC frequency, to turn [`rdtsc`] differences into time.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: the EAL is initialised (it calibrates the TSC in init).
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }

    /// `rte_eal_cleanup`: releases hugepages and the EAL's threads. Every port must be closed and every
    /// mempool freed before; nothing of DPDK may be used after.
    ///
    /// # Safety
    /// No DPDK object (port, queue, mempool, mbuf, ring) may be used after this call.
    pub unsafe fn cleanup(self) -> i32 {
        // SAFETY: the caller promises nothing of DPDK is used after this.
        unsafe { dpdk_sys::rte_eal_cleanup() }
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
