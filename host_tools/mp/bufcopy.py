# A byte copy that allocates nothing (for code that runs with the heap
# locked: littlefs block-device callbacks, the heap-lock harness).
import micropython


@micropython.viper
def copy(dst, src, a: int, n: int):
    # dst[0:n] = src[a:a + n]
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[i] = s[a + i]
        i += 1
