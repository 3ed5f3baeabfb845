/* A static, libc-free program for images built FROM scratch (x86_64 Linux).
 * It prints a greeting, its uid and gid, and its arguments, so tests can see
 * who it runs as. Rebuild with:
 *   gcc -static -nostdlib -Os -fno-asynchronous-unwind-tables -fno-stack-protector -fno-builtin \
 *       -Wl,--build-id=none -s -o hello hello.c
 */
static long syscall3(long n, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static unsigned long length(const char *s) {
    unsigned long n = 0;
    while (s[n]) n++;
    return n;
}

static void put(const char *s) { syscall3(1, 1, (long)s, (long)length(s)); }

static void put_number(long value) {
    char buf[24];
    int i = sizeof buf - 1;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + value % 10);
        value /= 10;
    } while (value && i > 0);
    put(buf + i);
}

void run(long *stack) {
    long argc = stack[0];
    char **argv = (char **)(stack + 1);
    put("hello from strata uid=");
    put_number(syscall3(102, 0, 0, 0)); /* getuid */
    put(" gid=");
    put_number(syscall3(104, 0, 0, 0)); /* getgid */
    for (long i = 1; i < argc; i++) {
        put(" ");
        put(argv[i]);
    }
    put("\n");
    syscall3(60, 0, 0, 0); /* exit(0) */
}

__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call run\n");
