#include "linli_device.h"

int main(int argc, char **argv) { return linli_device_main(argc, argv); }
