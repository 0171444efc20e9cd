#include "core/error.h"
#include "engine/model_runner.h"

namespace vortex {

void ModelRunner::set_sparse_attention(std::shared_ptr<const SparseAttentionConfig> config) {
  fail("sparse attention flows do not run on ", device_name(device()),
       " yet: use --device cpu with --flow");
}

}  // namespace vortex
