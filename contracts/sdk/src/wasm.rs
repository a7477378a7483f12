//! The wasm32 side: host imports, [`WasmEnv`], the allocator and the panic handler.

use alloc::vec;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::env::{CallError, Env, Id};

#[link(wasm_import_module = "mw1")]
unsafe extern "C" {
    fn input_len() -> i32;
    fn input_read(dst: *mut u8);
    fn output(src: *const u8, len: i32);
    fn abort(msg: *const u8, len: i32) -> !;
    fn caller(dst: *mut u8);
    fn self_id(dst: *mut u8);
    fn tick() -> i64;
    fn storage_get(key: *const u8, key_len: i32, dst: *mut u8, cap: i32) -> i32;
    fn storage_set(key: *const u8, key_len: i32, val: *const u8, val_len: i32);
    fn storage_remove(key: *const u8, key_len: i32) -> i32;
    fn emit(topic: *const u8, topic_len: i32, data: *const u8, data_len: i32);
    fn call(contract: *const u8, input: *const u8, input_len: i32, fuel: i64) -> i32;
    fn return_data_len() -> i32;
    fn return_data_read(dst: *mut u8);
}

/// Lengths the host hands out are bounded far below `i32::MAX`.
fn len(n: usize) -> i32 {
    n as i32
}

/// [`Env`] backed by the host imports.
pub struct WasmEnv(());

impl Env for WasmEnv {
    fn caller(&self) -> Id {
        let mut id = [0; 32];
        unsafe { caller(id.as_mut_ptr()) };
        id
    }

    fn self_id(&self) -> Id {
        let mut id = [0; 32];
        unsafe { self_id(id.as_mut_ptr()) };
        id
    }

    fn tick(&self) -> u64 {
        unsafe { tick() as u64 }
    }

    fn get_into(&self, key: &[u8], buf: &mut [u8]) -> Option<usize> {
        let n = unsafe {
            storage_get(
                key.as_ptr(),
                len(key.len()),
                buf.as_mut_ptr(),
                len(buf.len()),
            )
        };
        usize::try_from(n).ok()
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 64];
        let n = unsafe {
            storage_get(
                key.as_ptr(),
                len(key.len()),
                buf.as_mut_ptr(),
                len(buf.len()),
            )
        };
        if n < 0 {
            return None;
        }
        let n = n as usize;
        if n > buf.len() {
            buf.resize(n, 0);
            unsafe { storage_get(key.as_ptr(), len(key.len()), buf.as_mut_ptr(), len(n)) };
        }
        buf.truncate(n);
        Some(buf)
    }

    fn set(&mut self, key: &[u8], value: &[u8]) {
        unsafe {
            storage_set(
                key.as_ptr(),
                len(key.len()),
                value.as_ptr(),
                len(value.len()),
            )
        }
    }

    fn remove(&mut self, key: &[u8]) -> bool {
        unsafe { storage_remove(key.as_ptr(), len(key.len())) == 1 }
    }

    fn emit(&mut self, topic: &[u8], data: &[u8]) {
        unsafe {
            emit(
                topic.as_ptr(),
                len(topic.len()),
                data.as_ptr(),
                len(data.len()),
            )
        }
    }

    fn call(&mut self, contract: &Id, input: &[u8], fuel: u64) -> Result<Vec<u8>, CallError> {
        let status = unsafe {
            call(
                contract.as_ptr(),
                input.as_ptr(),
                len(input.len()),
                fuel as i64,
            )
        };
        let read = || {
            let n = unsafe { return_data_len() } as usize;
            let mut data = vec![0u8; n];
            if n > 0 {
                unsafe { return_data_read(data.as_mut_ptr()) };
            }
            data
        };
        match status {
            s if s >= 0 => Ok(read()),
            -1 => Err(CallError::Aborted(read())),
            -2 => Err(CallError::OutOfFuel),
            -4 => Err(CallError::NoContract),
            _ => Err(CallError::Trapped),
        }
    }
}

/// Runs a contract function: reads the input, calls `f`, sets the output or aborts.
pub fn run(f: fn(&mut WasmEnv, &[u8]) -> Result<Vec<u8>, &'static str>) {
    let n = unsafe { input_len() } as usize;
    let mut input = vec![0u8; n];
    if n > 0 {
        unsafe { input_read(input.as_mut_ptr()) };
    }
    match f(&mut WasmEnv(()), &input) {
        Ok(out) => unsafe { output(out.as_ptr(), len(out.len())) },
        Err(message) => unsafe { abort(message.as_ptr(), len(message.len())) },
    }
}

unsafe extern "C" {
    /// Set by wasm-ld: the first byte after the stack and static data.
    static __heap_base: u8;
}

/// Bump allocator: never frees (the instance is dropped after the call), grows memory as needed,
/// and extends the last allocation in place on `realloc` (so a growing `Vec` does not copy).
struct Bump;

static NEXT: AtomicUsize = AtomicUsize::new(0);

const PAGE: usize = 65_536;

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut next = NEXT.load(Ordering::Relaxed);
        if next == 0 {
            next = unsafe { &__heap_base as *const u8 as usize };
        }
        let start = (next + layout.align() - 1) & !(layout.align() - 1);
        let Some(end) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if !ensure(end) {
            return core::ptr::null_mut();
        }
        NEXT.store(end, Ordering::Relaxed);
        start as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        if start + layout.size() == NEXT.load(Ordering::Relaxed) {
            let Some(end) = start.checked_add(new_size) else {
                return core::ptr::null_mut();
            };
            if !ensure(end) {
                return core::ptr::null_mut();
            }
            NEXT.store(end, Ordering::Relaxed);
            return ptr;
        }
        let new =
            unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !new.is_null() {
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

/// Grows linear memory so that `end` is addressable.
fn ensure(end: usize) -> bool {
    let have = core::arch::wasm32::memory_size(0) * PAGE;
    if end <= have {
        return true;
    }
    let pages = (end - have).div_ceil(PAGE);
    core::arch::wasm32::memory_grow(0, pages) != usize::MAX
}

#[global_allocator]
static ALLOCATOR: Bump = Bump;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
