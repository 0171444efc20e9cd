// Dead-code removal: keep what reaches a store or the result, renumber densely.
#include "flow/passes.h"

namespace vortex::flow {
namespace {

void remove_dead(Function& fn) {
  std::vector<bool> live(fn.ops.size(), false);
  if (fn.result >= 0) live[fn.result] = true;
  for (size_t i = fn.ops.size(); i-- > 0;) {
    if (fn.ops[i].kind == OpKind::kStoreField) live[i] = true;
    if (!live[i]) continue;
    for (ValueId id : fn.ops[i].operands) live[id] = true;
  }
  std::vector<ValueId> renumber(fn.ops.size(), -1);
  std::vector<Op> kept;
  for (size_t i = 0; i < fn.ops.size(); ++i) {
    if (!live[i]) continue;
    Op op = std::move(fn.ops[i]);
    for (ValueId& id : op.operands) id = renumber[id];
    renumber[i] = static_cast<ValueId>(kept.size());
    kept.push_back(std::move(op));
  }
  fn.ops = std::move(kept);
  if (fn.result >= 0) fn.result = renumber[fn.result];
  fn.stages.clear();
}

}  // namespace

void remove_dead_code(FlowProgram& program) {
  remove_dead(program.summarize);
  remove_dead(program.score);
}

}  // namespace vortex::flow
