#include "app/app.h"

int main(int argc, char** argv) { return vnet::app::Main(argc, argv); }
