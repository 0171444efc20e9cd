// The limits of the flow compiler, in one place: what a flow file may hold before it is refused
// with a located diagnostic (docs/flows.md, "Limits", lists them for flow authors). They keep
// every stage bounded in time, memory and stack depth for any input, and they are far above what
// a real flow needs (the shipped flows use a few percent of each).
#pragma once

#include <cstdint>

namespace vortex::flow {

// ---- the file ----
// Bytes of flow source; a larger file is refused before it is parsed.
constexpr int64_t kMaxSourceBytes = int64_t{1} << 20;
// Characters of one name (identifier).
constexpr int kMaxNameLength = 256;

// ---- syntax ----
// Nesting of expressions and blocks (parentheses, calls, operator chains like a+a+...+a, if
// blocks); deeper input is a diagnostic, so no stage can exhaust the stack.
constexpr int kMaxNestingDepth = 200;
// Items of one list, tuple or call's arguments.
constexpr int kMaxListItems = 1024;

// ---- declarations ----
// Module constants, class constants, Fields and States together.
constexpr int kMaxDeclarations = 1024;
// Fields and States together.
constexpr int kMaxFields = 64;
// Statements of summarize or of score (those inside `if` blocks included).
constexpr int kMaxStatements = 1024;

// ---- the IR ----
// Operations of summarize or of score after lowering.
constexpr int kMaxOps = 4096;
// The longest chain of dependent operations in summarize or score: a value computed from the
// result of at most this many operations in sequence (the code generators recurse along it).
constexpr int kMaxOpDepth = 512;
// Elements of one value per page (score, the page axis N excluded) or in all (summarize, and
// score values without N); and of all the values of one function together. The CPU executor
// keeps every value of a row at once, N pages of each: with these limits a row of 256 pages
// needs at most 256 MiB, whatever the flow.
constexpr int64_t kMaxValueElements = int64_t{1} << 16;
constexpr int64_t kMaxFunctionElements = int64_t{1} << 18;
// Bytes per (page, KV head, layer) of the Fields together, in their stored dtype (bf16 2 a
// value, int8 1 a value plus a 4-byte scale), and of the States together (f32, 4 a value).
constexpr int64_t kMaxFieldBytes = int64_t{128} << 10;
constexpr int64_t kMaxStateBytes = int64_t{256} << 10;

// ---- budget ----
// Page counts of a Budget (pages, floor, cap, sink, recent) are at most this.
constexpr int64_t kMaxBudgetPages = (int64_t{1} << 31) - 1;
// Entries of dense_layers, and a dense layer index is below kMaxLayers (and below the model's
// layer count, checked when a model is given).
constexpr int kMaxDenseLayers = 1024;
constexpr int64_t kMaxLayers = 1024;

}  // namespace vortex::flow
