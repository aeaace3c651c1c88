/* headertest.c - quartz.h compiles on its own as strict C99 (and, through
 * headertest.cpp, as C++), and its macros expand as documented. */
#include "quartz.h"
#include "quartz/sys/storage.h"

int main(void)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    qz_search_params p = QZ_SEARCH_PARAMS_INIT;
    qz_stats s;
    s.struct_size = sizeof s;
    (void)p;
    return (o.struct_size == sizeof o && QZ_VERSION_NUMBER == qz_version_number() &&
            QZ_VERSION_MAJOR * 10000 + QZ_VERSION_MINOR * 100 + QZ_VERSION_PATCH == QZ_VERSION_NUMBER)
               ? 0
               : 1;
}
