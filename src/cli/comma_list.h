// Flags that take a comma-separated list (--data a.txt,b.txt, --flows x.py,y.py).
#pragma once

#include <string>
#include <vector>

namespace vortex::cli {

// The items of "a, b,,c" in order, each trimmed of spaces and tabs, empty items dropped.
std::vector<std::string> split_comma_list(const std::string& text);

}  // namespace vortex::cli
