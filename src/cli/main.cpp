// Placeholder entry point until the CLI lands.
#include <cstdio>
int main() {
  std::puts("vortex: see --help");
  return 0;
}
