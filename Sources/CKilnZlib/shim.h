// zlib (Debian: zlib1g-dev): gzip inflation and CRC-32.
#include <zlib.h>
