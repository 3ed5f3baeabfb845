//! What differs between the ldconfig of one Debian architecture and another.
//!
//! ldconfig is always the image's own, native program: it reads ELF headers in
//! its own byte order and word size, knows its own dynamic linker's names,
//! classifies libraries by its own `readelflib.c`, names its own legacy hwcap
//! subdirectories and compares sonames with its own `char` signedness. Each of
//! those is a field here, taken from glibc 2.36's `sysdeps/unix/sysv/linux/*`.

/// `FLAG_*` values of glibc's `sysdeps/generic/ldconfig.h`.
pub(crate) mod flag {
    pub const LIBC4: i32 = 0x0000;
    pub const ELF: i32 = 0x0001;
    pub const ELF_LIBC5: i32 = 0x0002;
    pub const ELF_LIBC6: i32 = 0x0003;
    pub const ANY: i32 = -1;
    pub const IA64_LIB64: i32 = 0x0200;
    pub const X8664_LIB64: i32 = 0x0300;
    pub const S390_LIB64: i32 = 0x0400;
    pub const POWERPC_LIB64: i32 = 0x0500;
    pub const MIPS64_LIBN32: i32 = 0x0600;
    pub const MIPS64_LIBN64: i32 = 0x0700;
    pub const X8664_LIBX32: i32 = 0x0800;
    pub const ARM_LIBHF: i32 = 0x0900;
    pub const AARCH64_LIB64: i32 = 0x0a00;
    pub const ARM_LIBSF: i32 = 0x0b00;
    pub const MIPS_LIB32_NAN2008: i32 = 0x0c00;
    pub const MIPS64_LIBN32_NAN2008: i32 = 0x0d00;
    pub const MIPS64_LIBN64_NAN2008: i32 = 0x0e00;
    pub const RISCV_FLOAT_ABI_SOFT: i32 = 0x0f00;
    pub const RISCV_FLOAT_ABI_DOUBLE: i32 = 0x1000;
}

/// Which of glibc's `sysdeps/unix/sysv/linux/*/readelflib.c` classifies a library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Classifier {
    /// x86: checks `e_machine`; `amd64` is false for i386's build, which also takes IA-64.
    X86 {
        amd64: bool,
    },
    Arm,
    PowerPc,
    S390,
    Mips,
    RiscV,
}

#[derive(Debug)]
pub(crate) struct Arch {
    pub triplet: &'static str,
    pub big_endian: bool,
    /// The word size ldconfig was built for: `ElfW(Ehdr)`'s size is its
    /// minimum file size, and `struct exec`'s `a_info` is a `long`.
    pub bits64: bool,
    /// `_dl_cache_libcmp` compares plain `char`s: signed on x86 and MIPS.
    pub signed_char: bool,
    pub classifier: Classifier,
    /// `PT_INTERP` values that classify a library on their own.
    pub interpreters: &'static [(&'static str, i32)],
    /// `DT_NEEDED` values that classify a library on their own.
    pub known_libs: &'static [(&'static str, i32)],
    /// `_dl_string_hwcap`'s names, by bit, and `HWCAP_IMPORTANT`.
    pub hwcaps: &'static [&'static str],
    pub hwcap_important: u64,
    /// `_dl_string_platform`'s names, and the bit of the first.
    pub platforms: &'static [&'static str],
    pub first_platform: u32,
}

const LIBC6: i32 = flag::ELF_LIBC6;
const GLIBC_LIBS: &[(&str, i32)] = &[("libc.so.6", LIBC6), ("libm.so.6", LIBC6)];

const X86_HWCAPS: &[&str] = &["sse2", "x86_64", "avx512_1"];
const X86_PLATFORMS: &[&str] = &["i586", "i686", "haswell", "xeon_phi"];
const ARM_HWCAPS: &[&str] = &[
    "swp", "half", "thumb", "26bit", "fastmult", "fpa", "vfp", "edsp", "java", "iwmmxt", "crunch",
    "thumbee", "neon", "vfpv3", "vfpv3d16", "tls", "vfpv4", "idiva", "idivt", "vfpd32", "lpae",
    "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32",
];
const ARM_IMPORTANT: u64 = (1 << 6) | (1 << 12); // vfp, neon
const ARM_INTERPRETERS: &[(&str, i32)] = &[
    ("/lib/ld-linux.so.3", LIBC6),
    ("/lib/ld-linux-armhf.so.3", LIBC6),
];
const AARCH64_HWCAPS: &[&str] = &[
    "fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "fphp",
    "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop", "sha3", "sm3", "sm4",
    "asimddp", "sha512", "sve", "asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb",
    "paca", "pacg",
];

/// The ldconfig of a Debian architecture, by its Debian name.
///
/// Legacy hwcap subdirectory names are glibc's for x86, ARM, AArch64 and
/// RISC-V (none); for ppc64el, s390x and mips64el only `tls` is known here.
pub(crate) fn arch(name: &str) -> Option<Arch> {
    let base = Arch {
        triplet: "",
        big_endian: false,
        bits64: true,
        signed_char: false,
        classifier: Classifier::Arm,
        interpreters: &[],
        known_libs: GLIBC_LIBS,
        hwcaps: &[],
        hwcap_important: 0,
        platforms: &[],
        first_platform: 0,
    };
    let x86 = Arch {
        signed_char: true,
        hwcaps: X86_HWCAPS,
        hwcap_important: 0b111,
        platforms: X86_PLATFORMS,
        first_platform: 48,
        ..base
    };
    Some(match name {
        "amd64" => Arch {
            triplet: "x86_64-linux-gnu",
            classifier: Classifier::X86 { amd64: true },
            interpreters: &[
                ("/lib/ld-linux-x86-64.so.2", LIBC6),
                ("/lib/ld-linux.so.2", LIBC6),
                ("/libx32/ld-linux-x32.so.2", LIBC6),
                ("/lib64/ld-linux-x86-64.so.2", LIBC6),
            ],
            ..x86
        },
        "i386" => Arch {
            triplet: "i386-linux-gnu",
            bits64: false,
            classifier: Classifier::X86 { amd64: false },
            interpreters: &[
                ("/lib/ld-linux.so.2", LIBC6),
                ("/lib/ld-linux.so.1", flag::ELF_LIBC5),
            ],
            known_libs: &[
                ("libc.so.6", LIBC6),
                ("libm.so.6", LIBC6),
                ("libc.so.5", flag::ELF_LIBC5),
                ("libm.so.5", flag::ELF_LIBC5),
            ],
            ..x86
        },
        "arm64" => Arch {
            triplet: "aarch64-linux-gnu",
            interpreters: &[
                ("/lib/ld-linux-aarch64.so.1", LIBC6),
                ("/lib/ld-linux-aarch64_be.so.1", LIBC6),
                ("/lib/ld-linux-aarch64_ilp32.so.1", LIBC6),
                ("/lib/ld-linux-aarch64_be_ilp32.so.1", LIBC6),
                ("/lib/ld-linux.so.3", LIBC6),
                ("/lib/ld-linux-armhf.so.3", LIBC6),
            ],
            hwcaps: AARCH64_HWCAPS,
            hwcap_important: 1 << 8, // atomics
            ..base
        },
        "armhf" | "armel" => Arch {
            triplet: if name == "armhf" {
                "arm-linux-gnueabihf"
            } else {
                "arm-linux-gnueabi"
            },
            bits64: false,
            interpreters: ARM_INTERPRETERS,
            hwcaps: ARM_HWCAPS,
            hwcap_important: ARM_IMPORTANT,
            ..base
        },
        "ppc64el" => Arch {
            triplet: "powerpc64le-linux-gnu",
            classifier: Classifier::PowerPc,
            interpreters: &[
                ("/lib/ld64.so.2", LIBC6),
                ("/lib/ld.so.1", LIBC6),
                ("/lib64/ld64.so.1", LIBC6),
                ("/lib64/ld64.so.2", LIBC6),
            ],
            ..base
        },
        "s390x" => Arch {
            triplet: "s390x-linux-gnu",
            big_endian: true,
            classifier: Classifier::S390,
            interpreters: &[("/lib/ld64.so.1", LIBC6), ("/lib/ld.so.1", LIBC6)],
            ..base
        },
        "riscv64" => Arch {
            triplet: "riscv64-linux-gnu",
            classifier: Classifier::RiscV,
            interpreters: &[
                ("/lib/ld-linux-riscv64-lp64d.so.1", LIBC6),
                ("/lib/ld-linux-riscv64-lp64.so.1", LIBC6),
            ],
            ..base
        },
        "mips64el" => Arch {
            triplet: "mips64el-linux-gnuabi64",
            signed_char: true,
            classifier: Classifier::Mips,
            interpreters: &[
                ("/lib/ld.so.1", LIBC6),
                ("/lib32/ld.so.1", LIBC6),
                ("/lib64/ld.so.1", LIBC6),
            ],
            ..base
        },
        _ => return None,
    })
}

/// The subdirectory names ldconfig descends into and the hwcap bits of a
/// directory's path, as `is_hwcap_platform` and `path_hwcap` in `ldconfig.c`.
impl Arch {
    fn hwcap_bit(&self, name: &str) -> Option<u32> {
        if let Some(i) = self.hwcaps.iter().position(|h| *h == name) {
            return Some(i as u32);
        }
        if let Some(i) = self.platforms.iter().position(|p| *p == name) {
            return Some(self.first_platform + i as u32);
        }
        // `TLS_HWCAP_BIT`: the old "tls" subdirectory.
        (name == "tls").then_some(63)
    }

    pub fn is_hwcap_platform(&self, name: &str) -> bool {
        if let Some(i) = self.hwcaps.iter().position(|h| *h == name)
            && self.hwcap_important & (1 << i) != 0
        {
            return true;
        }
        self.platforms.contains(&name) || name == "tls"
    }

    /// Each trailing path component that names a hwcap adds its bit.
    pub fn path_hwcap(&self, path: &str) -> u64 {
        let mut hwcap = 0u64;
        let mut rest = path;
        // What precedes the first '/' is never looked at.
        while let Some(slash) = rest.rfind('/') {
            match self.hwcap_bit(&rest[slash + 1..]) {
                Some(bit) => hwcap = hwcap.wrapping_add(1 << bit),
                None => break,
            }
            rest = &rest[..slash];
        }
        hwcap
    }
}
