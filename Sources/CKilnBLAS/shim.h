// OpenBLAS's CBLAS interface (Debian: libopenblas-dev installs it as the cblas.h alternative).
#include <cblas.h>
