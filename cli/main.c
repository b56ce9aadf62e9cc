/* SPDX-License-Identifier: Apache-2.0 */
/* flushline: the admin CLI; everything lives in the fl_cli library. */
#include "cli.h"

int main(int argc, char **argv)
{
    return fl_cli_main(argc, argv);
}
