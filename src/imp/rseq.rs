//! The calling thread's restartable-sequences registration, carried across daemonize's
//! shared-memory intermediate child.
//!
//! The kernel drops the rseq registration of a child created with `CLONE_VM` (a vfork), and a
//! plain fork from that child inherits nothing. A daemon forked from daemonize's vfork'd
//! intermediate would so start with its main thread unregistered while the C library still
//! believes it registered: `sched_getcpu()` would return a stale CPU for ever, and the
//! per-CPU critical sections of an rseq user (tcmalloc, librseq) would run unprotected.
//! [`current`] learns, in the caller before the vfork, how its thread is registered;
//! [`restore`] registers the daemon's thread the same way. When the registration cannot be
//! named exactly ([`State::Unknown`]) daemonize takes two plain forks instead.
//!
//! The registration is glibc's (`__rseq_offset`/`__rseq_size`, glibc 2.35 and later), looked
//! up at run time in the loaded objects' dynamic symbol tables so that the library still
//! links against, and loads on, older C libraries; it is then checked with the kernel, which
//! answers `EBUSY` only for the exact area, length and signature already registered.

use core::ffi::{c_int, c_void, CStr};

/// How the calling thread is registered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum State {
    /// Not registered (or a kernel without rseq): nothing to carry.
    Unregistered,
    /// Registered at `area` (`len` bytes, signature `sig`), checked with the kernel.
    At { area: usize, len: u32, sig: u32 },
    /// Registered, but not where glibc says (or no glibc, or an architecture this file does
    /// not know (only x86-64 is known)): cannot be redone in a child.
    Unknown,
}

const FLAG_UNREGISTER: c_int = 1;

/// The signature glibc registers with (`RSEQ_SIG` of `<sys/rseq.h>`).
#[cfg(target_arch = "x86_64")]
const SIG: Option<u32> = Some(0x5305_3053);
#[cfg(not(target_arch = "x86_64"))]
const SIG: Option<u32> = None;

/// The thread pointer (`__builtin_thread_pointer()`), the base of `__rseq_offset`.
#[cfg(target_arch = "x86_64")]
fn thread_pointer() -> Option<usize> {
    let tp: usize;
    // SAFETY: reads the TCB's self pointer at %fs:0, which the x86-64 TLS ABI keeps there.
    unsafe {
        core::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags))
    };
    Some(tp)
}
#[cfg(not(target_arch = "x86_64"))]
fn thread_pointer() -> Option<usize> {
    None
}

/// rseq(2). Async-signal-safe.
fn rseq(area: usize, len: u32, flags: c_int, sig: u32) -> c_int {
    // SAFETY: the kernel only checks the arguments, or reads/writes `len` bytes at `area`,
    // which the callers pass as a live, 32-byte aligned area of at least that size.
    let r = unsafe { libc::syscall(libc::SYS_rseq, area, len, flags, sig) };
    if r < 0 {
        crate::sys::get_errno()
    } else {
        0
    }
}

/// 32 bytes, aligned as `struct rseq`: the probe of [`current`].
#[repr(C, align(32))]
struct Area(core::cell::UnsafeCell<[u32; 8]>);
// SAFETY: only the kernel writes it, during the probe of one thread (daemonize runs once, in
// the single thread daemon(7) asks for); nothing reads it.
unsafe impl Sync for Area {}
static PROBE: Area = Area(core::cell::UnsafeCell::new([0; 8]));

/// How the calling thread is registered now. Learns it from the kernel: registering a probe
/// area succeeds only on an unregistered thread (it is unregistered again at once).
pub(crate) fn current() -> State {
    let Some(sig) = SIG else {
        return State::Unknown;
    };
    let probe = PROBE.0.get() as usize;
    match rseq(probe, 32, 0, sig) {
        0 => {
            rseq(probe, 32, FLAG_UNREGISTER, sig);
            return State::Unregistered;
        }
        libc::ENOSYS => return State::Unregistered,
        _ => {}
    }
    // Registered somewhere: where glibc says?
    let (Some(tp), Some(off), Some(size)) = (
        thread_pointer(),
        lookup(c"__rseq_offset"),
        lookup(c"__rseq_size"),
    ) else {
        return State::Unknown;
    };
    // SAFETY: the symbols are glibc's `ptrdiff_t __rseq_offset` and `unsigned int __rseq_size`.
    let (off, size) = unsafe { (*(off as *const isize), *(size as *const u32)) };
    let area = tp.wrapping_add_signed(off);
    if size == 0 || area % 32 != 0 {
        return State::Unknown;
    }
    // glibc registers 32 bytes, or its feature size rounded up to 32 (2.40 and later).
    let rounded = (size + 31) & !31;
    for len in [size, rounded, 32] {
        if rseq(area, len, 0, sig) == libc::EBUSY {
            return State::At { area, len, sig };
        }
    }
    State::Unknown
}

/// Registers the calling thread as [`current`] found it (in the daemon, forked from the
/// vfork'd intermediate, whose memory is the caller's). Async-signal-safe: one syscall.
pub(crate) fn restore(s: State) {
    if let State::At { area, len, sig } = s {
        rseq(area, len, 0, sig);
    }
}

/// The address of a defined dynamic symbol in any loaded object, by its GNU hash table.
#[cfg(not(target_arch = "x86_64"))]
fn lookup(_name: &CStr) -> Option<usize> {
    None
}

/// The address of a defined dynamic symbol in any loaded object, by its GNU hash table
/// (64-bit ELF).
#[cfg(target_arch = "x86_64")]
fn lookup(name: &CStr) -> Option<usize> {
    let mut found = Find {
        name,
        hash: gnu_hash(name.to_bytes()),
        addr: 0,
    };
    // SAFETY: the callback gets valid dl_phdr_info pointers for the call's duration and
    // `found` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each_object), &mut found as *mut Find as *mut c_void) };
    (found.addr != 0).then_some(found.addr)
}

#[cfg(target_arch = "x86_64")]
struct Find<'a> {
    name: &'a CStr,
    hash: u32,
    addr: usize,
}

#[cfg(target_arch = "x86_64")]
fn gnu_hash(s: &[u8]) -> u32 {
    s.iter()
        .fold(5381u32, |h, &c| h.wrapping_mul(33).wrapping_add(c as u32))
}

/// dl_iterate_phdr's callback: looks the name up in one object; 1 stops the walk.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn each_object(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info and our `Find`.
    let (info, find) = unsafe { (&*info, &mut *(data as *mut Find)) };
    // SAFETY: the object's program headers and dynamic section are mapped while it is loaded.
    match unsafe { find_in(info, find) } {
        Some(a) => {
            find.addr = a;
            1
        }
        None => 0,
    }
}

/// # Safety
/// `info` describes a loaded object (as dl_iterate_phdr passes it).
#[cfg(target_arch = "x86_64")]
unsafe fn find_in(info: &libc::dl_phdr_info, find: &Find) -> Option<usize> {
    const DT_GNU_HASH: u64 = 0x6fff_fef5;
    let base = info.dlpi_addr as usize;
    if info.dlpi_phdr.is_null() {
        return None;
    }
    // A table address is relocated (glibc does it in place) unless it is below the base.
    let fix = |v: u64| {
        let v = v as usize;
        if v < base {
            v.wrapping_add(base)
        } else {
            v
        }
    };
    // SAFETY: every pointer comes from the object's own program headers, dynamic section,
    // GNU hash table, symbol and string tables, as the loader mapped them; the walk stays
    // within the tables' own counts (DT_NULL, nbuckets, the chain's end bit).
    unsafe {
        let phdrs = core::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize);
        let dynamic = phdrs.iter().find(|p| p.p_type == libc::PT_DYNAMIC)?;
        let mut d = base.wrapping_add(dynamic.p_vaddr as usize) as *const [u64; 2];
        let (mut hash, mut symtab, mut strtab) = (0, 0, 0);
        loop {
            match *d {
                [0, _] => break,
                [DT_GNU_HASH, v] => hash = fix(v),
                [6, v] => symtab = fix(v),
                [5, v] => strtab = fix(v),
                _ => {}
            }
            d = d.add(1);
        }
        if hash == 0 || symtab == 0 || strtab == 0 {
            return None;
        }
        let h = hash as *const u32;
        let (nbuckets, symoffset, bloom_words) = (*h, *h.add(1), *h.add(2));
        if nbuckets == 0 {
            return None;
        }
        let buckets = (h.add(4) as *const usize).add(bloom_words as usize) as *const u32;
        let chain = buckets.add(nbuckets as usize);
        let mut idx = *buckets.add((find.hash % nbuckets) as usize);
        if idx < symoffset {
            return None;
        }
        loop {
            let ch = *chain.add((idx - symoffset) as usize);
            if ch | 1 == find.hash | 1 {
                let sym = &*(symtab as *const libc::Elf64_Sym).add(idx as usize);
                let name =
                    CStr::from_ptr((strtab + sym.st_name as usize) as *const core::ffi::c_char);
                if name == find.name && sym.st_shndx != 0 {
                    return Some(base.wrapping_add(sym.st_value as usize));
                }
            }
            if ch & 1 != 0 {
                return None;
            }
            idx += 1;
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn glibc_registration_is_found_and_checked() {
        // Each test thread is created by pthread_create, which registers it with glibc.
        let s = current();
        println!("rseq state of this thread: {s:?}");
        match s {
            State::At { area, len, sig } => {
                assert_eq!(rseq(area, len, 0, sig), libc::EBUSY);
                restore(s); // already registered: EBUSY, nothing changes
                assert_eq!(rseq(area, len, 0, sig), libc::EBUSY);
            }
            // glibc older than 2.35, or rseq off (GLIBC_TUNABLES=glibc.pthread.rseq=0).
            State::Unregistered => assert!(lookup(c"__rseq_size").is_none_or(|p| {
                // SAFETY: glibc's `unsigned int __rseq_size`.
                unsafe { *(p as *const u32) == 0 }
            })),
            State::Unknown => panic!("registered, but not where glibc says"),
        }
    }

    #[test]
    fn lookup_finds_a_libc_function_and_not_a_made_up_name() {
        let getpid = lookup(c"getpid").expect("getpid in some loaded object");
        assert_eq!(getpid, libc::getpid as *const () as usize);
        assert!(lookup(c"daemonkit_no_such_symbol").is_none());
    }
}
