// oneDNN primitives for the convolutions and matrix products of training, run on memory the
// caller owns (typically the tfjs wasm heap: a Uint8Array view plus byte offsets), so no tensor is
// copied on the way in or out. Operands arrive in TensorFlow's layouts (NHWC activations, HWIO
// filters, row-major matrices); each primitive is created once per shape with
// format_tag::any, so oneDNN picks its fastest (blocked) layouts and we reorder at the edges.
// The intermediate blocked tensors and the scratchpad of every primitive share one per-thread
// arena, since a thread runs one primitive at a time.
#include <napi.h>
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// One operand of a plan: TensorFlow's layout at `slot` of the caller's pointers, and, when oneDNN
// chose another layout, the reorder to/from a buffer at `arenaOffset` in the arena.
struct Operand {
  int arg;
  bool output;
  int slot;
  memory user;
  std::optional<memory> inner;
  std::optional<dnnl::reorder> reorder;
  size_t arenaOffset = 0;
};

struct Plan {
  dnnl::primitive prim;
  std::vector<Operand> operands;
  std::optional<memory> scratchpad;
  size_t scratchOffset = 0;
  size_t arenaBytes = 0;
  std::string impl;
};

// A batch normalization over one group of images (see BatchNorm).
struct BnPlan {
  dnnl::primitive prim;
  memory::desc data, stat;
  std::optional<memory> scratchpad;
  size_t scratchBytes = 0;
  std::string impl;
};

constexpr size_t kAlign = 64;
size_t alignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Per OS thread (the main thread and each worker_threads worker): engine, stream, plans, arena.
struct ThreadState {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::unordered_map<std::string, std::unique_ptr<Plan>> plans;
  std::unordered_map<std::string, std::unique_ptr<BnPlan>> bnPlans;
  void* arena = nullptr;
  size_t arenaBytes = 0;
  ~ThreadState() { std::free(arena); }
  char* arenaFor(size_t bytes) {
    if (bytes > arenaBytes) {
      std::free(arena);
      arena = std::aligned_alloc(kAlign, alignUp(bytes));
      if (arena == nullptr) throw std::bad_alloc();
      arenaBytes = alignUp(bytes);
    }
    return static_cast<char*>(arena);
  }
};

ThreadState& state() {
  thread_local ThreadState s;
  return s;
}

// Adds an operand whose user layout is `user` and whose primitive layout is `want`.
void addOperand(Plan& plan, ThreadState& st, int arg, bool output, int slot,
                const memory::desc& user, const memory::desc& want) {
  Operand op{arg, output, slot, memory(user, st.eng, DNNL_MEMORY_NONE)};
  if (want != user) {
    op.inner = memory(want, st.eng, DNNL_MEMORY_NONE);
    op.reorder = output ? dnnl::reorder(*op.inner, op.user) : dnnl::reorder(op.user, *op.inner);
    op.arenaOffset = plan.arenaBytes;
    plan.arenaBytes += alignUp(want.get_size());
  }
  plan.operands.push_back(std::move(op));
}

void finishPlan(Plan& plan, ThreadState& st, const dnnl::primitive_desc_base& pd) {
  memory::desc sp = pd.scratchpad_desc();
  if (sp.get_size() > 0) {
    plan.scratchpad = memory(sp, st.eng, DNNL_MEMORY_NONE);
    plan.scratchOffset = plan.arenaBytes;
    plan.arenaBytes += alignUp(sp.get_size());
  }
  plan.impl = pd.impl_info_str();
}

void runPlan(Plan& plan, ThreadState& st, const std::vector<char*>& ptrs) {
  char* arena = st.arenaFor(plan.arenaBytes);
  std::unordered_map<int, memory> args;
  for (Operand& op : plan.operands) {
    op.user.set_data_handle(ptrs[op.slot]);
    if (op.inner) {
      op.inner->set_data_handle(arena + op.arenaOffset);
      args.insert({op.arg, *op.inner});
    } else {
      args.insert({op.arg, op.user});
    }
  }
  if (plan.scratchpad) {
    plan.scratchpad->set_data_handle(arena + plan.scratchOffset);
    args.insert({DNNL_ARG_SCRATCHPAD, *plan.scratchpad});
  }
  for (Operand& op : plan.operands)
    if (!op.output && op.reorder) op.reorder->execute(st.strm, op.user, *op.inner);
  plan.prim.execute(st.strm, args);
  for (Operand& op : plan.operands)
    if (op.output && op.reorder) op.reorder->execute(st.strm, *op.inner, op.user);
  st.strm.wait();
}

dnnl::primitive_attr scratchpadAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// Convolution geometry, in the order the JS side packs it.
struct ConvShape {
  int64_t n, h, w, ci, kh, kw, co, oh, ow, sh, sw, dh, dw, pt, pb, pl, pr, hasBias, act;
};
enum ConvKind { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };
enum Activation { kLinear = 0, kRelu = 1 };
// Pointer slots: 0 = x (or dx), 1 = filter (or dw), 2 = y (or dy), 3 = bias.

std::unique_ptr<Plan> makeConvPlan(ThreadState& st, int kind, const ConvShape& s) {
  const memory::dims src{s.n, s.ci, s.h, s.w}, wei{s.co, s.ci, s.kh, s.kw},
      dst{s.n, s.co, s.oh, s.ow}, bias{s.co};
  const memory::dims strides{s.sh, s.sw}, dil{s.dh - 1, s.dw - 1}, padL{s.pt, s.pl},
      padR{s.pb, s.pr};
  const memory::desc srcUser(src, dt::f32, tag::nhwc), weiUser(wei, dt::f32, tag::hwio),
      dstUser(dst, dt::f32, tag::nhwc), biasUser(bias, dt::f32, tag::x);
  const memory::desc srcAny(src, dt::f32, tag::any), weiAny(wei, dt::f32, tag::any),
      dstAny(dst, dt::f32, tag::any);
  const bool withBias = kind == kForward && s.hasBias != 0;
  const auto alg = dnnl::algorithm::convolution_direct;

  dnnl::primitive_attr fwdAttr = scratchpadAttr();
  if (kind == kForward && s.act == kRelu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    fwdAttr.set_post_ops(ops);
  }
  const auto prop =
      kind == kForward ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
  dnnl::convolution_forward::desc fwdDesc =
      withBias ? dnnl::convolution_forward::desc(prop, alg, srcAny, weiAny, biasUser, dstAny,
                                                 strides, dil, padL, padR)
               : dnnl::convolution_forward::desc(prop, alg, srcAny, weiAny, dstAny, strides, dil,
                                                 padL, padR);
  dnnl::convolution_forward::primitive_desc fwdPd(fwdDesc, fwdAttr, st.eng);

  auto plan = std::make_unique<Plan>();
  if (kind == kForward) {
    plan->prim = dnnl::convolution_forward(fwdPd);
    addOperand(*plan, st, DNNL_ARG_SRC, false, 0, srcUser, fwdPd.src_desc());
    addOperand(*plan, st, DNNL_ARG_WEIGHTS, false, 1, weiUser, fwdPd.weights_desc());
    if (withBias) addOperand(*plan, st, DNNL_ARG_BIAS, false, 3, biasUser, biasUser);
    addOperand(*plan, st, DNNL_ARG_DST, true, 2, dstUser, fwdPd.dst_desc());
    finishPlan(*plan, st, fwdPd);
  } else if (kind == kBackwardData) {
    dnnl::convolution_backward_data::desc d(alg, srcAny, weiAny, dstAny, strides, dil, padL, padR);
    dnnl::convolution_backward_data::primitive_desc pd(d, scratchpadAttr(), st.eng, fwdPd);
    plan->prim = dnnl::convolution_backward_data(pd);
    addOperand(*plan, st, DNNL_ARG_DIFF_DST, false, 2, dstUser, pd.diff_dst_desc());
    addOperand(*plan, st, DNNL_ARG_WEIGHTS, false, 1, weiUser, pd.weights_desc());
    addOperand(*plan, st, DNNL_ARG_DIFF_SRC, true, 0, srcUser, pd.diff_src_desc());
    finishPlan(*plan, st, pd);
  } else {
    dnnl::convolution_backward_weights::desc d(alg, srcAny, weiAny, dstAny, strides, dil, padL,
                                               padR);
    dnnl::convolution_backward_weights::primitive_desc pd(d, scratchpadAttr(), st.eng, fwdPd);
    plan->prim = dnnl::convolution_backward_weights(pd);
    addOperand(*plan, st, DNNL_ARG_SRC, false, 0, srcUser, pd.src_desc());
    addOperand(*plan, st, DNNL_ARG_DIFF_DST, false, 2, dstUser, pd.diff_dst_desc());
    addOperand(*plan, st, DNNL_ARG_DIFF_WEIGHTS, true, 1, weiUser, pd.diff_weights_desc());
    finishPlan(*plan, st, pd);
  }
  return plan;
}

// Batched matrix product C[b] = op(A[b]) · op(B[b]) on row-major operands; a batch of 1 on
// either side is broadcast. Pointer slots: 0 = A, 1 = B, 2 = C.
std::unique_ptr<Plan> makeMatMulPlan(ThreadState& st, int64_t ba, int64_t bb, int64_t m,
                                     int64_t k, int64_t n, bool ta, bool tb) {
  const int64_t b = std::max(ba, bb);
  const memory::desc a({ba, m, k}, dt::f32,
                       ta ? memory::dims{m * k, 1, m} : memory::dims{m * k, k, 1});
  const memory::desc w({bb, k, n}, dt::f32,
                       tb ? memory::dims{k * n, 1, k} : memory::dims{k * n, n, 1});
  const memory::desc c({b, m, n}, dt::f32, memory::dims{m * n, n, 1});
  dnnl::matmul::desc d(a, w, c);
  dnnl::matmul::primitive_desc pd(d, scratchpadAttr(), st.eng);
  auto plan = std::make_unique<Plan>();
  plan->prim = dnnl::matmul(pd);
  addOperand(*plan, st, DNNL_ARG_SRC, false, 0, a, pd.src_desc());
  addOperand(*plan, st, DNNL_ARG_WEIGHTS, false, 1, w, pd.weights_desc());
  addOperand(*plan, st, DNNL_ARG_DST, true, 2, c, pd.dst_desc());
  finishPlan(*plan, st, pd);
  return plan;
}

// The heap: a typed array (its buffer may be a SharedArrayBuffer) whose data pointer we take.
char* heapBase(const Napi::Value& v, size_t* length) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), "heap must be a typed array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  napi_typedarray_type type;
  size_t len;
  void* data;
  napi_value buf;
  size_t off;
  if (napi_get_typedarray_info(v.Env(), ta, &type, &len, &data, &buf, &off) != napi_ok)
    throw Napi::Error::New(v.Env(), "could not read the heap typed array");
  *length = ta.ByteLength();
  return static_cast<char*>(data);
}

std::vector<int64_t> intArgs(const Napi::Value& v, size_t expected, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() != expected)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must have " +
                                            std::to_string(expected) + " entries");
  std::vector<int64_t> out(expected);
  for (uint32_t i = 0; i < expected; i++) out[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return out;
}

// Byte offsets into the heap; -1 for an absent operand. Each operand's extent is checked.
std::vector<char*> pointers(Napi::Env env, char* base, size_t heapBytes,
                            const std::vector<int64_t>& offsets,
                            const std::vector<int64_t>& bytes) {
  std::vector<char*> ptrs(offsets.size(), nullptr);
  for (size_t i = 0; i < offsets.size(); i++) {
    if (offsets[i] < 0) continue;
    if (static_cast<size_t>(offsets[i]) + static_cast<size_t>(bytes[i]) > heapBytes ||
        offsets[i] % 4 != 0)
      throw Napi::RangeError::New(env, "operand " + std::to_string(i) + " (byte offset " +
                                           std::to_string(offsets[i]) +
                                           ") lies outside the heap or is misaligned");
    ptrs[i] = base + offsets[i];
  }
  return ptrs;
}

std::string keyOf(char tagChar, const std::vector<int64_t>& v) {
  std::string k(1, tagChar);
  for (int64_t x : v) {
    k += ',';
    k += std::to_string(x);
  }
  return k;
}

template <typename Make>
Plan& planFor(ThreadState& st, const std::string& key, Make make) {
  auto it = st.plans.find(key);
  if (it != st.plans.end()) return *it->second;
  return *st.plans.emplace(key, make()).first->second;
}

// conv(kind, heap, offsets[4], shape[19]) → implementation name.
Napi::Value Conv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const int kind = info[0].As<Napi::Number>().Int32Value();
    if (kind < 0 || kind > 2) throw Napi::RangeError::New(env, "conv kind must be 0, 1 or 2");
    size_t heapBytes;
    char* base = heapBase(info[1], &heapBytes);
    const std::vector<int64_t> offsets = intArgs(info[2], 4, "offsets");
    const std::vector<int64_t> g = intArgs(info[3], 19, "shape");
    ConvShape s;
    std::memcpy(&s, g.data(), sizeof(s));
    const std::vector<int64_t> bytes{4 * s.n * s.h * s.w * s.ci, 4 * s.kh * s.kw * s.ci * s.co,
                                     4 * s.n * s.oh * s.ow * s.co, 4 * s.co};
    std::vector<char*> ptrs = pointers(env, base, heapBytes, offsets, bytes);
    if (ptrs[0] == nullptr || ptrs[1] == nullptr || ptrs[2] == nullptr ||
        (kind == kForward && s.hasBias && ptrs[3] == nullptr))
      throw Napi::TypeError::New(env, "conv: a required operand offset is missing");
    ThreadState& st = state();
    std::vector<int64_t> key = g;
    key.push_back(kind);
    Plan& plan = planFor(st, keyOf('c', key), [&] { return makeConvPlan(st, kind, s); });
    runPlan(plan, st, ptrs);
    return Napi::String::New(env, plan.impl);
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(env, std::string("oneDNN: ") + e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "oneDNN: out of memory for the reorder/scratchpad arena");
  }
}

// matmul(heap, offsets[3], [batchA, batchB, m, k, n, transposeA, transposeB]) → implementation.
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    size_t heapBytes;
    char* base = heapBase(info[0], &heapBytes);
    const std::vector<int64_t> offsets = intArgs(info[1], 3, "offsets");
    const std::vector<int64_t> g = intArgs(info[2], 7, "shape");
    const int64_t ba = g[0], bb = g[1], m = g[2], k = g[3], n = g[4];
    if (ba != bb && ba != 1 && bb != 1)
      throw Napi::RangeError::New(env, "matmul: batch sizes must match or one must be 1");
    const std::vector<int64_t> bytes{4 * ba * m * k, 4 * bb * k * n, 4 * std::max(ba, bb) * m * n};
    std::vector<char*> ptrs = pointers(env, base, heapBytes, offsets, bytes);
    ThreadState& st = state();
    Plan& plan = planFor(st, keyOf('m', g),
                         [&] { return makeMatMulPlan(st, ba, bb, m, k, n, g[5] != 0, g[6] != 0); });
    runPlan(plan, st, ptrs);
    return Napi::String::New(env, plan.impl);
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(env, std::string("oneDNN: ") + e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "oneDNN: out of memory for the reorder/scratchpad arena");
  }
}

// Training-mode batch normalization of an NHWC batch whose statistics are per group of
// n/groups consecutive images (split BN): each group is one oneDNN batch_normalization over
// {n/groups, c, h, w} in nhwc, with separate scale (gamma) and shift (beta) and biased variance.
// forward:  slots 0 = x, 1 = gamma, 2 = beta, 3 = y, 4 = mean [groups, c], 5 = variance [groups, c]
// backward: slots 0 = dy, 1 = x, 2 = gamma, 3 = beta, 4 = mean, 5 = variance, 6 = dx, 7 = dgamma,
// 8 = dbeta (dgamma/dbeta summed over the groups). oneDNN 2.6's backward refuses to run without the
// shift argument although the gradients do not depend on it.
enum BnKind { kBnForward = 0, kBnBackward = 1 };

std::unique_ptr<BnPlan> makeBnPlan(ThreadState& st, int kind, int64_t rows, int64_t h, int64_t w,
                                   int64_t c, float eps) {
  auto plan = std::make_unique<BnPlan>();
  plan->data = memory::desc({rows, c, h, w}, dt::f32, tag::nhwc);
  plan->stat = memory::desc({c}, dt::f32, tag::x);
  const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  dnnl::batch_normalization_forward::desc fd(dnnl::prop_kind::forward_training, plan->data, eps,
                                             flags);
  dnnl::batch_normalization_forward::primitive_desc fpd(fd, scratchpadAttr(), st.eng);
  if (kind == kBnForward) {
    plan->prim = dnnl::batch_normalization_forward(fpd);
    plan->scratchBytes = fpd.scratchpad_desc().get_size();
    if (plan->scratchBytes > 0) plan->scratchpad = memory(fpd.scratchpad_desc(), st.eng, DNNL_MEMORY_NONE);
    plan->impl = fpd.impl_info_str();
  } else {
    dnnl::batch_normalization_backward::desc bd(dnnl::prop_kind::backward, plan->data, plan->data,
                                                eps, flags);
    dnnl::batch_normalization_backward::primitive_desc bpd(bd, scratchpadAttr(), st.eng, fpd);
    plan->prim = dnnl::batch_normalization_backward(bpd);
    plan->scratchBytes = bpd.scratchpad_desc().get_size();
    if (plan->scratchBytes > 0) plan->scratchpad = memory(bpd.scratchpad_desc(), st.eng, DNNL_MEMORY_NONE);
    plan->impl = bpd.impl_info_str();
  }
  return plan;
}

// batchNorm(kind, heap, offsets[6 | 9], [n, h, w, c, groups], eps) → implementation name.
Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    const int kind = info[0].As<Napi::Number>().Int32Value();
    if (kind != kBnForward && kind != kBnBackward)
      throw Napi::RangeError::New(env, "batchNorm kind must be 0 (forward) or 1 (backward)");
    size_t heapBytes;
    char* base = heapBase(info[1], &heapBytes);
    const std::vector<int64_t> g = intArgs(info[3], 5, "shape");
    const int64_t n = g[0], h = g[1], w = g[2], c = g[3], groups = g[4];
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0 || groups <= 0 || n % groups != 0)
      throw Napi::RangeError::New(env, "batchNorm: the batch must split into whole groups");
    const float eps = info[4].As<Napi::Number>().FloatValue();
    const int64_t data = 4 * n * h * w * c, stat = 4 * groups * c, vec = 4 * c;
    const std::vector<int64_t> bytes =
        kind == kBnForward ? std::vector<int64_t>{data, vec, vec, data, stat, stat}
                           : std::vector<int64_t>{data, data, vec, vec, stat, stat, data, vec, vec};
    const std::vector<int64_t> offsets = intArgs(info[2], bytes.size(), "offsets");
    std::vector<char*> ptrs = pointers(env, base, heapBytes, offsets, bytes);
    for (char* p : ptrs)
      if (p == nullptr) throw Napi::TypeError::New(env, "batchNorm: an operand offset is missing");
    ThreadState& st = state();
    const int64_t rows = n / groups;
    std::vector<int64_t> key{kind, rows, h, w, c};
    key.push_back(static_cast<int64_t>(static_cast<double>(eps) * 1e12));
    auto it = st.bnPlans.find(keyOf('b', key));
    if (it == st.bnPlans.end())
      it = st.bnPlans.emplace(keyOf('b', key), makeBnPlan(st, kind, rows, h, w, c, eps)).first;
    BnPlan& plan = *it->second;
    // Per-group partial dgamma/dbeta after the first group live at the end of the arena.
    const size_t partial = kind == kBnBackward && groups > 1 ? alignUp(2 * vec) : 0;
    char* arena = st.arenaFor(alignUp(plan.scratchBytes) + partial);
    if (plan.scratchpad) plan.scratchpad->set_data_handle(arena);
    const size_t groupBytes = static_cast<size_t>(data / groups);
    auto mem = [&](const memory::desc& d, void* p) { return memory(d, st.eng, p); };
    for (int64_t gi = 0; gi < groups; gi++) {
      const size_t off = gi * groupBytes;
      const size_t soff = gi * vec;
      std::unordered_map<int, memory> args;
      if (plan.scratchpad) args.insert({DNNL_ARG_SCRATCHPAD, *plan.scratchpad});
      if (kind == kBnForward) {
        args.insert({DNNL_ARG_SRC, mem(plan.data, ptrs[0] + off)});
        args.insert({DNNL_ARG_SCALE, mem(plan.stat, ptrs[1])});
        args.insert({DNNL_ARG_SHIFT, mem(plan.stat, ptrs[2])});
        args.insert({DNNL_ARG_DST, mem(plan.data, ptrs[3] + off)});
        args.insert({DNNL_ARG_MEAN, mem(plan.stat, ptrs[4] + soff)});
        args.insert({DNNL_ARG_VARIANCE, mem(plan.stat, ptrs[5] + soff)});
      } else {
        char* dg = gi == 0 ? ptrs[7] : arena + alignUp(plan.scratchBytes);
        char* db = gi == 0 ? ptrs[8] : arena + alignUp(plan.scratchBytes) + vec;
        args.insert({DNNL_ARG_DIFF_DST, mem(plan.data, ptrs[0] + off)});
        args.insert({DNNL_ARG_SRC, mem(plan.data, ptrs[1] + off)});
        args.insert({DNNL_ARG_SCALE, mem(plan.stat, ptrs[2])});
        args.insert({DNNL_ARG_SHIFT, mem(plan.stat, ptrs[3])});
        args.insert({DNNL_ARG_MEAN, mem(plan.stat, ptrs[4] + soff)});
        args.insert({DNNL_ARG_VARIANCE, mem(plan.stat, ptrs[5] + soff)});
        args.insert({DNNL_ARG_DIFF_SRC, mem(plan.data, ptrs[6] + off)});
        args.insert({DNNL_ARG_DIFF_SCALE, mem(plan.stat, dg)});
        args.insert({DNNL_ARG_DIFF_SHIFT, mem(plan.stat, db)});
      }
      plan.prim.execute(st.strm, args);
      st.strm.wait();
      if (kind == kBnBackward && gi > 0) {
        float* sumG = reinterpret_cast<float*>(ptrs[7]);
        float* sumB = reinterpret_cast<float*>(ptrs[8]);
        const float* pg = reinterpret_cast<const float*>(arena + alignUp(plan.scratchBytes));
        const float* pb = pg + c;
        for (int64_t i = 0; i < c; i++) {
          sumG[i] += pg[i];
          sumB[i] += pb[i];
        }
      }
    }
    return Napi::String::New(env, plan.impl);
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(env, std::string("oneDNN: ") + e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, "oneDNN: out of memory for the batch-norm scratchpad");
  }
}

// Parameter updates of a training step, one pass each instead of the 3–6 elementwise wasm
// passes (and temporaries) of their tfjs compositions. oneDNN has no optimizer primitive, so
// these are plain loops, parallel over this thread's OpenMP threads. Each output element is
// computed with the same float32 operations in the same order as the composition (no FMA
// contraction: -std=c++17 keeps -ffp-contract off, and baseline x86-64 has no FMA).
//
// sgdMomentum(heap, offsets[5] = [p, g, b (-1 on the first step), pOut, bOut], n,
//             lr, momentum, weightDecay):  d = g + wd·p;  b' = μ·b + d (b' = d first);  p' = p − lr·b'
Napi::Value SgdMomentum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t heapBytes;
  char* base = heapBase(info[0], &heapBytes);
  const int64_t n = info[2].As<Napi::Number>().Int64Value();
  if (n < 0) throw Napi::RangeError::New(env, "sgdMomentum: negative length");
  const std::vector<int64_t> offsets = intArgs(info[1], 5, "offsets");
  std::vector<char*> ptrs = pointers(env, base, heapBytes, offsets, std::vector<int64_t>(5, 4 * n));
  if (ptrs[0] == nullptr || ptrs[1] == nullptr || ptrs[3] == nullptr || ptrs[4] == nullptr)
    throw Napi::TypeError::New(env, "sgdMomentum: a required operand offset is missing");
  const float lr = info[3].As<Napi::Number>().FloatValue();
  const float mu = info[4].As<Napi::Number>().FloatValue();
  const float wd = info[5].As<Napi::Number>().FloatValue();
  const float* p = reinterpret_cast<const float*>(ptrs[0]);
  const float* g = reinterpret_cast<const float*>(ptrs[1]);
  const float* b = reinterpret_cast<const float*>(ptrs[2]);
  float* pOut = reinterpret_cast<float*>(ptrs[3]);
  float* bOut = reinterpret_cast<float*>(ptrs[4]);
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) {
    const float d = wd != 0.f ? g[i] + p[i] * wd : g[i];
    const float bi = b != nullptr ? b[i] * mu + d : d;
    bOut[i] = bi;
    pOut[i] = p[i] - bi * lr;
  }
  return env.Undefined();
}

// momentumAverage(heap, offsets[3] = [k, q, out], n, m):  out = k·m + q·(1 − m)  (MoCo's key
// encoder update).
Napi::Value MomentumAverage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t heapBytes;
  char* base = heapBase(info[0], &heapBytes);
  const int64_t n = info[2].As<Napi::Number>().Int64Value();
  if (n < 0) throw Napi::RangeError::New(env, "momentumAverage: negative length");
  const std::vector<int64_t> offsets = intArgs(info[1], 3, "offsets");
  std::vector<char*> ptrs = pointers(env, base, heapBytes, offsets, std::vector<int64_t>(3, 4 * n));
  for (char* ptr : ptrs)
    if (ptr == nullptr) throw Napi::TypeError::New(env, "momentumAverage: an operand offset is missing");
  const float m = info[3].As<Napi::Number>().FloatValue();
  const float rest = static_cast<float>(1.0 - info[3].As<Napi::Number>().DoubleValue());
  const float* k = reinterpret_cast<const float*>(ptrs[0]);
  const float* q = reinterpret_cast<const float*>(ptrs[1]);
  float* out = reinterpret_cast<float*>(ptrs[2]);
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) out[i] = k[i] * m + q[i] * rest;
  return env.Undefined();
}

// setThreads(n): OpenMP threads for this JS thread's primitives (a per-thread setting).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "threads must be ≥ 1");
  omp_set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

// Drops this thread's cached primitives and arena.
Napi::Value ClearCache(const Napi::CallbackInfo& info) {
  ThreadState& st = state();
  st.plans.clear();
  st.bnPlans.clear();
  std::free(st.arena);
  st.arena = nullptr;
  st.arenaBytes = 0;
  return info.Env().Undefined();
}

// Peak single-precision GEMM rate of this CPU with the current thread count: the best of a few
// runs of dnnl_sgemm on square matrices of side `size`, in GFLOP/s.
Napi::Value PeakGflops(const Napi::CallbackInfo& info) {
  const int64_t size = info.Length() > 0 ? info[0].As<Napi::Number>().Int64Value() : 1024;
  const int reps = info.Length() > 1 ? info[1].As<Napi::Number>().Int32Value() : 5;
  std::vector<float> a(size * size, 1.f), b(size * size, 0.5f), c(size * size, 0.f);
  double best = 0;
  for (int r = 0; r < reps; r++) {
    auto t0 = std::chrono::steady_clock::now();
    dnnl::sgemm('N', 'N', size, size, size, 1.f, a.data(), size, b.data(), size, 0.f, c.data(),
                size);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * size * size * size / s / 1e9);
  }
  return Napi::Number::New(info.Env(), best);
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const dnnl_version_t* v = dnnl_version();
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                       std::to_string(v->patch));
  o.Set("cpuRuntime", v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other");
  const char* isa = "older than avx2";
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx2: isa = "avx2"; break;
    case dnnl::cpu_isa::avx2_vnni: isa = "avx2_vnni"; break;
    case dnnl::cpu_isa::avx512_core: isa = "avx512_core"; break;
    case dnnl::cpu_isa::avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl::cpu_isa::avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl::cpu_isa::avx512_core_amx: isa = "avx512_core_amx"; break;
    default: break;
  }
  o.Set("isa", isa);
  o.Set("threads", omp_get_max_threads());
  o.Set("cachedPlans", static_cast<double>(state().plans.size() + state().bnPlans.size()));
  o.Set("arenaBytes", static_cast<double>(state().arenaBytes));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("conv", Napi::Function::New(env, Conv));
  exports.Set("matmul", Napi::Function::New(env, MatMul));
  exports.Set("batchNorm", Napi::Function::New(env, BatchNorm));
  exports.Set("sgdMomentum", Napi::Function::New(env, SgdMomentum));
  exports.Set("momentumAverage", Napi::Function::New(env, MomentumAverage));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("clearCache", Napi::Function::New(env, ClearCache));
  exports.Set("peakGflops", Napi::Function::New(env, PeakGflops));
  exports.Set("info", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace

NODE_API_MODULE(maskcon_native, Init)
