/*  anyray-launch: see ar_launch.h. */
#include "ar_launch.h"

int main (int argc, char *argv[])
{
    return ar_launch_main (argc, argv);
}
