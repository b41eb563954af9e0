// oneDNN primitives on tensors that each own their memory (one Float32Array per operand, as the
// `native-memory` tfjs backend keeps them outside any wasm heap): convolutions forward (with
// bias/ReLU) and backward, matrix products, training BatchNorm forward/backward, max-pooling
// forward/backward, ReLU backward. Operands are in TensorFlow's layouts (NHWC, HWIO, row-major);
// convolutions are created with format_tag::any and reordered at the edges, as in addon.cc.
//
// A module of its own (maskcon_native_memory.node) rather than more functions in addon.cc: the
// two take their operands differently (one heap + offsets there, one typed array per operand
// here), and keeping them apart lets either change without rebuilding the other's plans.
#include <napi.h>
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
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

constexpr size_t kAlign = 64;
size_t alignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// An argument of a primitive: the caller's buffer in slot `slot`, and when the primitive wants
// another layout, a blocked copy at `arenaOffset` of the thread's arena plus the reorder.
struct Arg {
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
  std::vector<Arg> args;
  std::optional<memory> scratchpad;
  size_t scratchOffset = 0;
  size_t arenaBytes = 0;
  std::string impl;
  // Extra buffers in the arena that are not the caller's (pooling's dst and workspace).
  std::vector<std::pair<int, memory>> internal;
  std::vector<size_t> internalOffsets;
  // A primitive run before `prim` on the same arguments (max-pool forward before its backward).
  std::optional<dnnl::primitive> before;
  std::vector<int> beforeArgs;
};

struct ThreadState {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  std::unordered_map<std::string, std::unique_ptr<Plan>> plans;
  void* arena = nullptr;
  size_t arenaBytes = 0;
  ~ThreadState() { std::free(arena); }
  char* arenaFor(size_t bytes) {
    if (bytes > arenaBytes) {
      std::free(arena);
      arena = std::aligned_alloc(kAlign, alignUp(std::max<size_t>(bytes, kAlign)));
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

dnnl::primitive_attr userScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void addArg(Plan& plan, ThreadState& st, int arg, bool output, int slot, const memory::desc& user,
            const memory::desc& want) {
  Arg a{arg, output, slot, memory(user, st.eng, DNNL_MEMORY_NONE)};
  if (want != user) {
    a.inner = memory(want, st.eng, DNNL_MEMORY_NONE);
    a.reorder = output ? dnnl::reorder(*a.inner, a.user) : dnnl::reorder(a.user, *a.inner);
    a.arenaOffset = plan.arenaBytes;
    plan.arenaBytes += alignUp(want.get_size());
  }
  plan.args.push_back(std::move(a));
}

void addInternal(Plan& plan, ThreadState& st, int arg, const memory::desc& d) {
  plan.internal.emplace_back(arg, memory(d, st.eng, DNNL_MEMORY_NONE));
  plan.internalOffsets.push_back(plan.arenaBytes);
  plan.arenaBytes += alignUp(d.get_size());
}

void finish(Plan& plan, ThreadState& st, const dnnl::primitive_desc_base& pd) {
  const memory::desc sp = pd.scratchpad_desc();
  if (sp.get_size() > 0) {
    plan.scratchpad = memory(sp, st.eng, DNNL_MEMORY_NONE);
    plan.scratchOffset = plan.arenaBytes;
    plan.arenaBytes += alignUp(sp.get_size());
  }
  plan.impl = pd.impl_info_str();
}

void run(Plan& plan, ThreadState& st, const std::vector<float*>& ptrs) {
  char* arena = st.arenaFor(plan.arenaBytes);
  std::unordered_map<int, memory> args;
  for (Arg& a : plan.args) {
    a.user.set_data_handle(ptrs[a.slot]);
    if (a.inner) {
      a.inner->set_data_handle(arena + a.arenaOffset);
      args.insert({a.arg, *a.inner});
    } else {
      args.insert({a.arg, a.user});
    }
  }
  for (size_t i = 0; i < plan.internal.size(); i++) {
    plan.internal[i].second.set_data_handle(arena + plan.internalOffsets[i]);
    args.insert({plan.internal[i].first, plan.internal[i].second});
  }
  if (plan.scratchpad) {
    plan.scratchpad->set_data_handle(arena + plan.scratchOffset);
    args.insert({DNNL_ARG_SCRATCHPAD, *plan.scratchpad});
  }
  for (Arg& a : plan.args)
    if (!a.output && a.reorder) a.reorder->execute(st.strm, a.user, *a.inner);
  if (plan.before) {
    std::unordered_map<int, memory> b;
    for (int k : plan.beforeArgs) b.insert({k, args.at(k)});
    plan.before->execute(st.strm, b);
  }
  plan.prim.execute(st.strm, args);
  for (Arg& a : plan.args)
    if (a.output && a.reorder) a.reorder->execute(st.strm, *a.inner, a.user);
  st.strm.wait();
}

// ---- argument handling -----------------------------------------------------------------------

// The data pointer of a Float32Array holding at least `need` elements (need < 0: optional, null).
float* floats(const Napi::Value& v, int64_t need, const char* what) {
  Napi::Env env = v.Env();
  if (need < 0 && (v.IsUndefined() || v.IsNull())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, std::string(what) + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  const int64_t want = need < 0 ? -need : need;
  if (static_cast<int64_t>(a.ElementLength()) < want)
    throw Napi::RangeError::New(env, std::string(what) + " holds " +
                                         std::to_string(a.ElementLength()) + " floats, needs " +
                                         std::to_string(want));
  return a.Data();
}

std::vector<int64_t> ints(const Napi::Value& v, size_t n, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() != n)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must have " + std::to_string(n) +
                                            " entries");
  std::vector<int64_t> out(n);
  for (uint32_t i = 0; i < n; i++) {
    out[i] = a.Get(i).As<Napi::Number>().Int64Value();
    if (out[i] < 0) throw Napi::RangeError::New(v.Env(), std::string(what) + " entries must be ≥ 0");
  }
  return out;
}

std::string keyOf(char c, const std::vector<int64_t>& v) {
  std::string k(1, c);
  for (int64_t x : v) k += ',' + std::to_string(x);
  return k;
}

template <typename Make>
Plan& planFor(const std::string& key, Make make) {
  ThreadState& st = state();
  auto it = st.plans.find(key);
  if (it != st.plans.end()) return *it->second;
  return *st.plans.emplace(key, make(st)).first->second;
}

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F f) {
  try {
    return f(info.Env());
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(info.Env(), std::string("oneDNN: ") + e.what());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "oneDNN: out of memory for the reorder/scratchpad arena");
  }
}

// ---- convolution -----------------------------------------------------------------------------

// Geometry as the JS side packs it (the same 19 numbers as addon.cc's conv).
struct ConvShape {
  int64_t n, h, w, ci, kh, kw, co, oh, ow, sh, sw, dh, dw, pt, pb, pl, pr, hasBias, act;
};
enum { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };
// Slots: 0 = x (dx), 1 = filter (dw), 2 = y (dy), 3 = bias.

std::unique_ptr<Plan> convPlan(ThreadState& st, int kind, const ConvShape& s) {
  const memory::dims src{s.n, s.ci, s.h, s.w}, wei{s.co, s.ci, s.kh, s.kw},
      dst{s.n, s.co, s.oh, s.ow}, bias{s.co};
  const memory::dims strides{s.sh, s.sw}, dil{s.dh - 1, s.dw - 1}, padL{s.pt, s.pl},
      padR{s.pb, s.pr};
  const memory::desc srcU(src, dt::f32, tag::nhwc), weiU(wei, dt::f32, tag::hwio),
      dstU(dst, dt::f32, tag::nhwc), biasU(bias, dt::f32, tag::x);
  const memory::desc srcA(src, dt::f32, tag::any), weiA(wei, dt::f32, tag::any),
      dstA(dst, dt::f32, tag::any);
  const bool withBias = kind == kForward && s.hasBias != 0;
  const auto alg = dnnl::algorithm::convolution_direct;
  dnnl::primitive_attr attr = userScratchpad();
  if (kind == kForward && s.act == 1) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  const auto prop =
      kind == kForward ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
  const dnnl::convolution_forward::desc fd =
      withBias
          ? dnnl::convolution_forward::desc(prop, alg, srcA, weiA, biasU, dstA, strides, dil, padL,
                                            padR)
          : dnnl::convolution_forward::desc(prop, alg, srcA, weiA, dstA, strides, dil, padL, padR);
  const dnnl::convolution_forward::primitive_desc fpd(fd, attr, st.eng);
  auto plan = std::make_unique<Plan>();
  if (kind == kForward) {
    plan->prim = dnnl::convolution_forward(fpd);
    addArg(*plan, st, DNNL_ARG_SRC, false, 0, srcU, fpd.src_desc());
    addArg(*plan, st, DNNL_ARG_WEIGHTS, false, 1, weiU, fpd.weights_desc());
    if (withBias) addArg(*plan, st, DNNL_ARG_BIAS, false, 3, biasU, biasU);
    addArg(*plan, st, DNNL_ARG_DST, true, 2, dstU, fpd.dst_desc());
    finish(*plan, st, fpd);
  } else if (kind == kBackwardData) {
    const dnnl::convolution_backward_data::desc d(alg, srcA, weiA, dstA, strides, dil, padL, padR);
    const dnnl::convolution_backward_data::primitive_desc pd(d, userScratchpad(), st.eng, fpd);
    plan->prim = dnnl::convolution_backward_data(pd);
    addArg(*plan, st, DNNL_ARG_DIFF_DST, false, 2, dstU, pd.diff_dst_desc());
    addArg(*plan, st, DNNL_ARG_WEIGHTS, false, 1, weiU, pd.weights_desc());
    addArg(*plan, st, DNNL_ARG_DIFF_SRC, true, 0, srcU, pd.diff_src_desc());
    finish(*plan, st, pd);
  } else {
    const dnnl::convolution_backward_weights::desc d(alg, srcA, weiA, dstA, strides, dil, padL,
                                                     padR);
    const dnnl::convolution_backward_weights::primitive_desc pd(d, userScratchpad(), st.eng, fpd);
    plan->prim = dnnl::convolution_backward_weights(pd);
    addArg(*plan, st, DNNL_ARG_SRC, false, 0, srcU, pd.src_desc());
    addArg(*plan, st, DNNL_ARG_DIFF_DST, false, 2, dstU, pd.diff_dst_desc());
    addArg(*plan, st, DNNL_ARG_DIFF_WEIGHTS, true, 1, weiU, pd.diff_weights_desc());
    finish(*plan, st, pd);
  }
  return plan;
}

// conv(kind, x, filter, y, bias | null, shape[19]) → implementation name. For backwardData x is
// written (dx), for backwardWeights filter is written (dw); y is dy for both.
Napi::Value Conv(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) {
    const int kind = info[0].As<Napi::Number>().Int32Value();
    if (kind < 0 || kind > 2) throw Napi::RangeError::New(env, "conv kind must be 0, 1 or 2");
    const std::vector<int64_t> g = ints(info[5], 19, "conv shape");
    ConvShape s;
    std::memcpy(&s, g.data(), sizeof(s));
    std::vector<float*> p{floats(info[1], s.n * s.h * s.w * s.ci, "x"),
                          floats(info[2], s.kh * s.kw * s.ci * s.co, "filter"),
                          floats(info[3], s.n * s.oh * s.ow * s.co, "y"),
                          kind == kForward && s.hasBias ? floats(info[4], s.co, "bias") : nullptr};
    std::vector<int64_t> key = g;
    key.push_back(kind);
    Plan& plan = planFor(keyOf('c', key), [&](ThreadState& st) { return convPlan(st, kind, s); });
    run(plan, state(), p);
    return Napi::String::New(env, plan.impl);
  });
}

// ---- matrix product --------------------------------------------------------------------------

// matmul(a, b, c, [batchA, batchB, m, k, n, transposeA, transposeB]): C[b] = op(A[b])·op(B[b]),
// row-major; a batch of 1 on either side broadcasts.
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) {
    const std::vector<int64_t> g = ints(info[3], 7, "matmul shape");
    const int64_t ba = g[0], bb = g[1], m = g[2], k = g[3], n = g[4];
    if (ba != bb && ba != 1 && bb != 1)
      throw Napi::RangeError::New(env, "matmul: batch sizes must match or one must be 1");
    std::vector<float*> p{floats(info[0], ba * m * k, "a"), floats(info[1], bb * k * n, "b"),
                          floats(info[2], std::max(ba, bb) * m * n, "c")};
    Plan& plan = planFor(keyOf('m', g), [&](ThreadState& st) {
      const bool ta = g[5] != 0, tb = g[6] != 0;
      const memory::desc a({ba, m, k}, dt::f32,
                           ta ? memory::dims{m * k, 1, m} : memory::dims{m * k, k, 1});
      const memory::desc w({bb, k, n}, dt::f32,
                           tb ? memory::dims{k * n, 1, k} : memory::dims{k * n, n, 1});
      const memory::desc c({std::max(ba, bb), m, n}, dt::f32, memory::dims{m * n, n, 1});
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, w, c), userScratchpad(),
                                            st.eng);
      auto plan = std::make_unique<Plan>();
      plan->prim = dnnl::matmul(pd);
      addArg(*plan, st, DNNL_ARG_SRC, false, 0, a, pd.src_desc());
      addArg(*plan, st, DNNL_ARG_WEIGHTS, false, 1, w, pd.weights_desc());
      addArg(*plan, st, DNNL_ARG_DST, true, 2, c, pd.dst_desc());
      finish(*plan, st, pd);
      return plan;
    });
    run(plan, state(), p);
    return Napi::String::New(env, plan.impl);
  });
}

// ---- training BatchNorm ----------------------------------------------------------------------

// x [groups, rows, channels] (channels innermost: NHWC viewed per BN group); each group is
// normalised over its rows with its own statistics. oneDNN sees one group as an N×C tensor.
const auto kScaleShift = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;

// batchNormForward(x, gamma, beta, y, mean, variance, [groups, rows, channels], eps):
// y = (x − μ_g)/sqrt(σ²_g + eps)·γ + β; mean and (biased) variance are written as G×C.
Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) {
    const std::vector<int64_t> g = ints(info[6], 3, "batch-norm shape");
    const int64_t groups = g[0], rows = g[1], c = g[2];
    const float eps = info[7].As<Napi::Number>().FloatValue();
    float* x = floats(info[0], groups * rows * c, "x");
    float* gamma = floats(info[1], c, "gamma");
    float* beta = floats(info[2], c, "beta");
    float* y = floats(info[3], groups * rows * c, "y");
    float* mean = floats(info[4], groups * c, "mean");
    float* var = floats(info[5], groups * c, "variance");
    std::vector<int64_t> key{rows, c, static_cast<int64_t>(eps * 1e12)};
    Plan& plan = planFor(keyOf('b', key), [&](ThreadState& st) {
      const memory::desc data({rows, c, 1, 1}, dt::f32, tag::nhwc), vec({c}, dt::f32, tag::x);
      const dnnl::batch_normalization_forward::primitive_desc pd(
          dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, data, eps,
                                                  kScaleShift),
          userScratchpad(), st.eng);
      auto plan = std::make_unique<Plan>();
      plan->prim = dnnl::batch_normalization_forward(pd);
      addArg(*plan, st, DNNL_ARG_SRC, false, 0, data, data);
      addArg(*plan, st, DNNL_ARG_SCALE, false, 1, vec, vec);
      addArg(*plan, st, DNNL_ARG_SHIFT, false, 2, vec, vec);
      addArg(*plan, st, DNNL_ARG_DST, true, 3, data, data);
      addArg(*plan, st, DNNL_ARG_MEAN, true, 4, vec, vec);
      addArg(*plan, st, DNNL_ARG_VARIANCE, true, 5, vec, vec);
      finish(*plan, st, pd);
      return plan;
    });
    for (int64_t i = 0; i < groups; i++)
      run(plan, state(), {x + i * rows * c, gamma, beta, y + i * rows * c, mean + i * c, var + i * c});
    return Napi::String::New(env, plan.impl);
  });
}

// batchNormBackward(x, dy, gamma, mean, variance, dx, dgamma, dbeta, [groups, rows, channels],
// eps): the gradient of the forward above with batch statistics; dγ and dβ are summed over groups.
Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) {
    const std::vector<int64_t> g = ints(info[8], 3, "batch-norm shape");
    const int64_t groups = g[0], rows = g[1], c = g[2];
    const float eps = info[9].As<Napi::Number>().FloatValue();
    float* x = floats(info[0], groups * rows * c, "x");
    float* dy = floats(info[1], groups * rows * c, "dy");
    float* gamma = floats(info[2], c, "gamma");
    float* mean = floats(info[3], groups * c, "mean");
    float* var = floats(info[4], groups * c, "variance");
    float* dx = floats(info[5], groups * rows * c, "dx");
    float* dgamma = floats(info[6], c, "dgamma");
    float* dbeta = floats(info[7], c, "dbeta");
    std::vector<int64_t> key{rows, c, static_cast<int64_t>(eps * 1e12)};
    Plan& plan = planFor(keyOf('B', key), [&](ThreadState& st) {
      const memory::desc data({rows, c, 1, 1}, dt::f32, tag::nhwc), vec({c}, dt::f32, tag::x);
      const dnnl::batch_normalization_forward::primitive_desc hint(
          dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, data, eps,
                                                  kScaleShift),
          st.eng);
      const dnnl::batch_normalization_backward::primitive_desc pd(
          dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, data, data, eps,
                                                   kScaleShift),
          userScratchpad(), st.eng, hint);
      auto plan = std::make_unique<Plan>();
      plan->prim = dnnl::batch_normalization_backward(pd);
      addArg(*plan, st, DNNL_ARG_SRC, false, 0, data, data);
      addArg(*plan, st, DNNL_ARG_DIFF_DST, false, 1, data, data);
      addArg(*plan, st, DNNL_ARG_SCALE, false, 2, vec, vec);
      // oneDNN 2.6 asks for the shift here too (an input the backward never reads): zeros.
      addArg(*plan, st, DNNL_ARG_SHIFT, false, 8, vec, vec);
      addArg(*plan, st, DNNL_ARG_MEAN, false, 3, vec, vec);
      addArg(*plan, st, DNNL_ARG_VARIANCE, false, 4, vec, vec);
      addArg(*plan, st, DNNL_ARG_DIFF_SRC, true, 5, data, data);
      addArg(*plan, st, DNNL_ARG_DIFF_SCALE, true, 6, vec, vec);
      addArg(*plan, st, DNNL_ARG_DIFF_SHIFT, true, 7, vec, vec);
      finish(*plan, st, pd);
      return plan;
    });
    std::vector<float> dgs(c), dbs(c), unusedShift(c, 0.f);
    std::fill(dgamma, dgamma + c, 0.f);
    std::fill(dbeta, dbeta + c, 0.f);
    for (int64_t i = 0; i < groups; i++) {
      run(plan, state(),
          {x + i * rows * c, dy + i * rows * c, gamma, mean + i * c, var + i * c,
           dx + i * rows * c, dgs.data(), dbs.data(), unusedShift.data()});
      for (int64_t j = 0; j < c; j++) {
        dgamma[j] += dgs[j];
        dbeta[j] += dbs[j];
      }
    }
    return Napi::String::New(env, plan.impl);
  });
}

// ---- max pooling -----------------------------------------------------------------------------

// Geometry: [n, h, w, c, kh, kw, oh, ow, sh, sw, pt, pb, pl, pr]; padded cells never win (as in
// tfjs and PyTorch). Slots: 0 = x (dx for backward), 1 = y (dy for backward), 2 = x (backward).
struct PoolShape {
  int64_t n, h, w, c, kh, kw, oh, ow, sh, sw, pt, pb, pl, pr;
};

dnnl::pooling_forward::primitive_desc poolForwardPd(ThreadState& st, const PoolShape& s,
                                                    dnnl::prop_kind prop) {
  const memory::desc src({s.n, s.c, s.h, s.w}, dt::f32, tag::nhwc),
      dst({s.n, s.c, s.oh, s.ow}, dt::f32, tag::nhwc);
  return dnnl::pooling_forward::primitive_desc(
      dnnl::pooling_forward::desc(prop, dnnl::algorithm::pooling_max, src, dst, {s.sh, s.sw},
                                  {s.kh, s.kw}, {s.pt, s.pl}, {s.pb, s.pr}),
      userScratchpad(), st.eng);
}

// maxPool(x, y, shape[14])
Napi::Value MaxPool(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) {
    const std::vector<int64_t> g = ints(info[2], 14, "pool shape");
    PoolShape s;
    std::memcpy(&s, g.data(), sizeof(s));
    std::vector<float*> p{floats(info[0], s.n * s.h * s.w * s.c, "x"),
                          floats(info[1], s.n * s.oh * s.ow * s.c, "y")};
    Plan& plan = planFor(keyOf('p', g), [&](ThreadState& st) {
      const auto pd = poolForwardPd(st, s, dnnl::prop_kind::forward_inference);
      auto plan = std::make_unique<Plan>();
      plan->prim = dnnl::pooling_forward(pd);
      addArg(*plan, st, DNNL_ARG_SRC, false, 0, pd.src_desc(), pd.src_desc());
      addArg(*plan, st, DNNL_ARG_DST, true, 1, pd.dst_desc(), pd.dst_desc());
      finish(*plan, st, pd);
      return plan;
    });
    run(plan, state(), p);
    return Napi::String::New(env, plan.impl);
  });
}

// maxPoolBackward(x, dy, dx, shape[14]): the window maxima are found again (a forward pass with
// a workspace into the arena), then dy is routed to them.
Napi::Value MaxPoolBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) {
    const std::vector<int64_t> g = ints(info[3], 14, "pool shape");
    PoolShape s;
    std::memcpy(&s, g.data(), sizeof(s));
    std::vector<float*> p{floats(info[2], s.n * s.h * s.w * s.c, "dx"),
                          floats(info[1], s.n * s.oh * s.ow * s.c, "dy"),
                          floats(info[0], s.n * s.h * s.w * s.c, "x")};
    Plan& plan = planFor(keyOf('P', g), [&](ThreadState& st) {
      const auto fpd = poolForwardPd(st, s, dnnl::prop_kind::forward_training);
      const dnnl::pooling_backward::primitive_desc pd(
          dnnl::pooling_backward::desc(dnnl::algorithm::pooling_max, fpd.src_desc(),
                                       fpd.dst_desc(), {s.sh, s.sw}, {s.kh, s.kw}, {s.pt, s.pl},
                                       {s.pb, s.pr}),
          userScratchpad(), st.eng, fpd);
      auto plan = std::make_unique<Plan>();
      plan->prim = dnnl::pooling_backward(pd);
      plan->before = dnnl::pooling_forward(fpd);
      addArg(*plan, st, DNNL_ARG_DIFF_SRC, true, 0, fpd.src_desc(), pd.diff_src_desc());
      addArg(*plan, st, DNNL_ARG_DIFF_DST, false, 1, fpd.dst_desc(), pd.diff_dst_desc());
      addArg(*plan, st, DNNL_ARG_SRC, false, 2, fpd.src_desc(), fpd.src_desc());
      addInternal(*plan, st, DNNL_ARG_DST, fpd.dst_desc());
      addInternal(*plan, st, DNNL_ARG_WORKSPACE, fpd.workspace_desc());
      plan->beforeArgs = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE};
      // The forward and the backward share one scratchpad: it is sized for the larger.
      const size_t sp = std::max(fpd.scratchpad_desc().get_size(), pd.scratchpad_desc().get_size());
      if (sp > 0) {
        plan->scratchpad = memory(memory::desc({static_cast<int64_t>(sp)}, dt::u8, tag::x), st.eng,
                                  DNNL_MEMORY_NONE);
        plan->scratchOffset = plan->arenaBytes;
        plan->arenaBytes += alignUp(sp);
      }
      if (sp > 0) plan->beforeArgs.push_back(DNNL_ARG_SCRATCHPAD);
      plan->impl = pd.impl_info_str();
      return plan;
    });
    run(plan, state(), p);
    return Napi::String::New(env, plan.impl);
  });
}

// ---- ReLU backward ---------------------------------------------------------------------------

// reluBackward(dy, x, dx, length): dx = dy where x > 0, else 0. A plain loop (one pass, memory
// bound): oneDNN's eltwise primitive would need a descriptor per length for the same work.
Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  const int64_t n = info[3].As<Napi::Number>().Int64Value();
  const float* dy = floats(info[0], n, "dy");
  const float* x = floats(info[1], n, "x");
  float* dx = floats(info[2], n, "dx");
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
  return info.Env().Undefined();
}

// ---- elementwise ------------------------------------------------------------------------------

// elementwise(op, a, b | null, out, length): the full-tensor passes a training step makes outside
// its convolutions (ReLU, its gradient's Step and Mul, residual Add), on OpenMP threads. Plain
// loops with tfjs's semantics (NaN propagates, ReLU(−0) = +0); each result is the correctly
// rounded float32 of the operation, as in tfjs's JS kernels.
enum { kAdd = 0, kSub = 1, kMul = 2, kRelu = 3, kStep = 4 };

Napi::Value Elementwise(const Napi::CallbackInfo& info) {
  const int op = info[0].As<Napi::Number>().Int32Value();
  if (op < kAdd || op > kStep) throw Napi::RangeError::New(info.Env(), "unknown elementwise op");
  const int64_t n = info[4].As<Napi::Number>().Int64Value();
  const float* a = floats(info[1], n, "a");
  const float* b = op <= kMul ? floats(info[2], n, "b") : nullptr;
  float* out = floats(info[3], n, "out");
  switch (op) {
    case kAdd:
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
      break;
    case kSub:
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; i++) out[i] = a[i] - b[i];
      break;
    case kMul:
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
      break;
    case kRelu:
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; i++) out[i] = a[i] > 0.f ? a[i] : (a[i] != a[i] ? a[i] : 0.f);
      break;
    default:
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; i++) out[i] = a[i] > 0.f ? 1.f : (a[i] != a[i] ? a[i] : 0.f);
  }
  return info.Env().Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "threads must be ≥ 1");
  omp_set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value ClearCache(const Napi::CallbackInfo& info) {
  ThreadState& st = state();
  st.plans.clear();
  std::free(st.arena);
  st.arena = nullptr;
  st.arenaBytes = 0;
  return info.Env().Undefined();
}

Napi::Value ArenaBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(state().arenaBytes));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("conv", Napi::Function::New(env, Conv));
  exports.Set("matmul", Napi::Function::New(env, MatMul));
  exports.Set("batchNormForward", Napi::Function::New(env, BatchNormForward));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward));
  exports.Set("maxPool", Napi::Function::New(env, MaxPool));
  exports.Set("maxPoolBackward", Napi::Function::New(env, MaxPoolBackward));
  exports.Set("reluBackward", Napi::Function::New(env, ReluBackward));
  exports.Set("elementwise", Napi::Function::New(env, Elementwise));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("clearCache", Napi::Function::New(env, ClearCache));
  exports.Set("arenaBytes", Napi::Function::New(env, ArenaBytes));
  return exports;
}

}  // namespace

NODE_API_MODULE(maskcon_native_memory, Init)
