// Grouping of score ops into PER_PAGE and CROSS_PAGE stages for the code generators.
#include <algorithm>

#include "flow/passes.h"
#include "flow/shape_inference.h"

namespace vortex::flow {
namespace {

// True when the op combines values of different pages: a reduction or softmax over the page
// axis, or a matmul contracting it.
bool mixes_pages(const Function& fn, const Op& op) {
  if (op.operands.empty()) return false;
  const Shape& in = fn.ops[op.operands[0]].shape;
  switch (op.kind) {
    case OpKind::kSum:
    case OpKind::kMean:
    case OpKind::kMax:
    case OpKind::kMin:
    case OpKind::kL2Norm:
      return std::any_of(op.axes.begin(), op.axes.end(), [&](int a) { return is_page_dim(in[a]); });
    case OpKind::kSoftmax:
    case OpKind::kFoldSum:
    case OpKind::kFoldMean:
    case OpKind::kFoldMax:
    case OpKind::kFoldMin:
      return is_page_dim(in[op.axis]);
    case OpKind::kMatMul:
      return !in.empty() && is_page_dim(in.back());
    default:
      return false;
  }
}

}  // namespace

void assign_placement(FlowProgram& program) {
  Function& sum = program.summarize;
  sum.stages.clear();
  Stage all{Placement::kPerPage, {}};
  for (size_t i = 0; i < sum.ops.size(); ++i) {
    sum.ops[i].placement = Placement::kPerPage;
    all.ops.push_back(static_cast<ValueId>(i));
  }
  if (!all.ops.empty()) sum.stages.push_back(std::move(all));

  Function& fn = program.score;
  std::vector<int> level(fn.ops.size(), 0);
  int max_level = 0;
  for (size_t i = 0; i < fn.ops.size(); ++i) {
    Op& op = fn.ops[i];
    int l = 0;
    for (ValueId id : op.operands) l = std::max(l, level[id]);
    if (mixes_pages(fn, op)) ++l;
    level[i] = l;
    max_level = std::max(max_level, l);
    op.placement = l == 0 ? Placement::kPerPage : Placement::kCrossPage;
  }
  fn.stages.clear();
  for (int l = 0; l <= max_level; ++l) {
    Stage s{l == 0 ? Placement::kPerPage : Placement::kCrossPage, {}};
    for (size_t i = 0; i < fn.ops.size(); ++i)
      if (level[i] == l) s.ops.push_back(static_cast<ValueId>(i));
    if (!s.ops.empty()) fn.stages.push_back(std::move(s));
  }
}

}  // namespace vortex::flow
