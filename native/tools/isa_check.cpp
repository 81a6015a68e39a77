// Standalone self-check and timing of the native kernels without Node (for machines with a C++
// compiler but no Node, e.g. to exercise the AVX-512 path): every SIMD level the CPU has is tested
// against plain double-precision references (micro-kernel, GEMM driver in every layout, bf16 B,
// batches, attention forward/backward with dropout, fused LM head), then GEMM and fused kernels are
// timed. Build: see native/tools/isa_check.sh. Run: isa_check [threads...]
#include <execinfo.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../src/common.h"
#include "../src/gemm.h"
#include "../src/kernels.h"

using namespace attune;

namespace {

int failures = 0;
std::mt19937 rng(12345);

std::vector<float> randv(size_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void expectClose(const char* what, const float* got, const double* want, size_t n, double rtol, double atol) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    const double err = std::fabs(got[i] - want[i]) - (atol + rtol * std::fabs(want[i]));
    if (!(err <= 0) && (err > worst || !std::isfinite(got[i]))) {
      worst = std::isfinite(got[i]) ? err : 1e30;
      at = i;
    }
  }
  if (worst > 0) {
    failures++;
    std::printf("FAIL %s: element %zu got %g want %g\n", what, at, got[at], want[at]);
  }
}

void refGemm(bool tA, bool tB, long M, long N, long K, float alpha, const float* A, long lda, const float* B,
             long ldb, float beta, const float* C0, long ldc, double* out) {
  for (long i = 0; i < M; i++)
    for (long j = 0; j < N; j++) {
      double s = 0;
      for (long p = 0; p < K; p++)
        s += static_cast<double>(tA ? A[p * lda + i] : A[i * lda + p]) * (tB ? B[j * ldb + p] : B[p * ldb + j]);
      out[i * ldc + j] = alpha * s + (beta == 0 ? 0.0 : beta * static_cast<double>(C0[i * ldc + j]));
    }
}

void testGemm() {
  const long sizes[][3] = {{1, 1, 1}, {3, 7, 17}, {14, 32, 5}, {15, 33, 300}, {29, 65, 7}, {130, 97, 600}, {301, 263, 517}};
  for (auto& s : sizes) {
    const long M = s[0], N = s[1], K = s[2];
    for (int t = 0; t < 4; t++) {
      const bool tA = t & 1, tB = t & 2;
      const long lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 1, ldc = N + 2;
      auto A = randv((tA ? K : M) * lda), B = randv((tB ? N : K) * ldb), C = randv(M * ldc);
      std::vector<double> want(M * ldc);
      refGemm(tA, tB, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, 1.3f, C.data(), ldc, want.data());
      GemmDesc d{tA, tB, M, N, K, 0.7f, A.data(), lda, B.data(), ldb, false, 1.3f, C.data(), ldc};
      gemmParallel(d);
      for (long i = 0; i < M; i++)
        for (long j = N; j < ldc; j++) want[i * ldc + j] = C[i * ldc + j];
      char name[96];
      std::snprintf(name, sizeof name, "gemm %ldx%ldx%ld tA=%d tB=%d", M, N, K, tA, tB);
      expectClose(name, C.data(), want.data(), M * ldc, 1e-4, 2e-6 * K);
      // bf16 B
      std::vector<uint16_t> Bh(B.size());
      std::vector<float> Bw(B.size());
      for (size_t i = 0; i < B.size(); i++) {
        Bh[i] = floatToBf16(B[i]);
        Bw[i] = bf16ToFloat(Bh[i]);
      }
      auto C2 = randv(M * ldc);
      refGemm(tA, tB, M, N, K, 1.0f, A.data(), lda, Bw.data(), ldb, 0.0f, C2.data(), ldc, want.data());
      GemmDesc d2{tA, tB, M, N, K, 1.0f, A.data(), lda, Bh.data(), ldb, true, 0.0f, C2.data(), ldc};
      gemmSerial(d2);
      for (long i = 0; i < M; i++)
        for (long j = N; j < ldc; j++) want[i * ldc + j] = C2[i * ldc + j];
      std::snprintf(name, sizeof name, "gemm bf16 %ldx%ldx%ld tA=%d tB=%d", M, N, K, tA, tB);
      expectClose(name, C2.data(), want.data(), M * ldc, 1e-4, 2e-6 * K);
    }
  }
}

void testIsaOps() {
  const IsaOps* o = isa();
  for (long n : {1L, 7L, 17L, 33L, 1000L}) {
    auto x = randv(n, -30, 30);
    std::vector<float> y(n);
    std::vector<double> want(n);
    double s = o->expShift(x.data(), y.data(), n, 2.5f), ws = 0;
    for (long i = 0; i < n; i++) ws += want[i] = std::exp(static_cast<double>(x[i]) - 2.5);
    expectClose("expShift", y.data(), want.data(), n, 5e-6, 0);
    if (std::fabs(s - ws) > 1e-6 * ws) {
      failures++;
      std::printf("FAIL expShift sum %g vs %g\n", s, ws);
    }
    double m = -1e30;
    for (float v : x) m = std::max(m, static_cast<double>(v));
    if (o->rowMax(x.data(), n) != static_cast<float>(m)) {
      failures++;
      std::printf("FAIL rowMax n=%ld\n", n);
    }
    std::vector<float> g = randv(n, -20, 20), u = randv(n), out(n);
    o->swiglu(g.data(), u.data(), out.data(), n);
    for (long i = 0; i < n; i++) want[i] = g[i] / (1 + std::exp(-static_cast<double>(g[i]))) * u[i];
    expectClose("swiglu", out.data(), want.data(), n, 1e-6, 1e-7);
  }
  const float special[] = {-INFINITY, -100.f, -87.5f, 0.f, 88.5f, 89.f, INFINITY};
  float e[7];
  o->expArr(special, e, 7);
  if (e[0] != 0 || !(e[1] < 1e-37f) || !std::isinf(e[5]) || !std::isinf(e[6]) || e[3] != 1.0f) {
    failures++;
    std::printf("FAIL exp specials: %g %g %g %g %g %g %g\n", e[0], e[1], e[2], e[3], e[4], e[5], e[6]);
  }
}

// Naive attention (double) with the same dropout stream.
void refAttention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                  const std::vector<float>& go, const AttnShape& s, std::vector<double>& out,
                  std::vector<double>& gq, std::vector<double>& gk, std::vector<double>& gv) {
  const long G = s.Hq / s.Hkv, off = s.Tk - s.Tq;
  DropoutMask mask(s.seed, s.dropP);
  out.assign(q.size(), 0);
  gq.assign(q.size(), 0);
  gk.assign(k.size(), 0);
  gv.assign(v.size(), 0);
  std::vector<double> p(s.Tk), keep(s.Tk);
  for (long b = 0; b < s.B; b++)
    for (long h = 0; h < s.Hq; h++)
      for (long t = 0; t < s.Tq; t++) {
        const long hk = h / G;
        const float* qr = &q[((b * s.Tq + t) * s.Hq + h) * s.D];
        const long lim = s.causal ? std::max(0L, std::min(s.Tk, t + off + 1)) : s.Tk;
        double m = -1e300, sum = 0;
        for (long j = 0; j < lim; j++) {
          const float* kr = &k[((b * s.Tk + j) * s.Hkv + hk) * s.D];
          double d = 0;
          for (long x = 0; x < s.D; x++) d += static_cast<double>(qr[x]) * kr[x];
          p[j] = d * s.scale;
          m = std::max(m, p[j]);
        }
        for (long j = 0; j < lim; j++) sum += p[j] = std::exp(p[j] - m);
        double* o = &out[((b * s.Tq + t) * s.Hq + h) * s.D];
        const float* g = &go[((b * s.Tq + t) * s.Hq + h) * s.D];
        for (long j = 0; j < lim; j++) {
          p[j] /= sum;
          keep[j] = s.dropP > 0 ? (mask.keep(static_cast<uint64_t>(((b * s.Hq + h) * s.Tq + t) * s.Tk + j)) ? 1 / (1 - s.dropP) : 0) : 1;
          const float* vr = &v[((b * s.Tk + j) * s.Hkv + hk) * s.D];
          for (long x = 0; x < s.D; x++) o[x] += p[j] * keep[j] * vr[x];
        }
        double delta = 0;
        for (long x = 0; x < s.D; x++) delta += g[x] * o[x];
        for (long j = 0; j < lim; j++) {
          const long kv = ((b * s.Tk + j) * s.Hkv + hk) * s.D;
          double dp = 0;
          for (long x = 0; x < s.D; x++) dp += g[x] * static_cast<double>(v[kv + x]);
          for (long x = 0; x < s.D; x++) gv[kv + x] += p[j] * keep[j] * g[x];
          const double ds = p[j] * (dp * keep[j] - delta) * s.scale;
          for (long x = 0; x < s.D; x++) {
            gq[((b * s.Tq + t) * s.Hq + h) * s.D + x] += ds * k[kv + x];
            gk[kv + x] += ds * qr[x];
          }
        }
      }
}

void testAttention() {
  const long shapes[][7] = {{1, 1, 1, 1, 1, 1, 1},   {2, 7, 7, 4, 2, 8, 1},    {1, 33, 33, 9, 3, 64, 1},
                            {1, 150, 150, 3, 1, 32, 1}, {1, 5, 12, 2, 1, 16, 1}, {1, 12, 5, 2, 2, 16, 1},
                            {2, 17, 23, 3, 3, 7, 0},   {1, 71, 71, 2, 1, 64, 1}};
  for (auto& sh : shapes)
    for (double dropP : {0.0, 0.2}) {
      AttnShape s{sh[0], sh[1], sh[2], sh[3], sh[4], sh[5], static_cast<float>(1 / std::sqrt(sh[5])), sh[6] != 0, dropP, 77};
      auto q = randv(s.B * s.Tq * s.Hq * s.D, -2, 2), k = randv(s.B * s.Tk * s.Hkv * s.D, -2, 2),
           v = randv(s.B * s.Tk * s.Hkv * s.D), go = randv(q.size());
      std::vector<double> out, gq, gk, gv;
      refAttention(q, k, v, go, s, out, gq, gk, gv);
      std::vector<float> o(q.size()), lse(s.B * s.Hq * s.Tq), dq(q.size()), dk(k.size()), dv(v.size());
      attention(q.data(), k.data(), v.data(), o.data(), lse.data(), s);
      attentionBackward(q.data(), k.data(), v.data(), o.data(), lse.data(), go.data(), dq.data(), dk.data(), dv.data(), s);
      char name[96];
      std::snprintf(name, sizeof name, "attention B=%ld Tq=%ld Tk=%ld Hq=%ld Hkv=%ld D=%ld drop=%.1f", s.B, s.Tq, s.Tk,
                    s.Hq, s.Hkv, s.D, dropP);
      expectClose((std::string(name) + " out").c_str(), o.data(), out.data(), o.size(), 1e-4, 2e-6);
      expectClose((std::string(name) + " gq").c_str(), dq.data(), gq.data(), dq.size(), 1e-4, 1e-5);
      expectClose((std::string(name) + " gk").c_str(), dk.data(), gk.data(), dk.size(), 1e-4, 1e-5);
      expectClose((std::string(name) + " gv").c_str(), dv.data(), gv.data(), dv.size(), 1e-4, 1e-5);
    }
}

void testLce() {
  const long shapes[][3] = {{1, 1, 1}, {7, 17, 33}, {33, 64, 1000}, {300, 33, 300}, {17, 576, 2049}};
  for (auto& sh : shapes) {
    const long N = sh[0], d = sh[1], V = sh[2];
    auto h = randv(N * d), w = randv(V * d, -0.5, 0.5);
    std::vector<int32_t> labels(N);
    for (long r = 0; r < N; r++) labels[r] = static_cast<int32_t>((r * 7919) % V);
    if (N > 2) labels[2] = -100;
    std::vector<float> lse(N), logp(N), ent(N), t1(N), t2(N);
    std::vector<int32_t> am(N);
    LceOuts outs{lse.data(), logp.data(), ent.data(), am.data(), t1.data(), t2.data()};
    linearCrossEntropy(h.data(), w.data(), false, labels.data(), N, d, V, outs);
    std::vector<double> wl(N), wlp(N), wen(N), wgh(N * d, 0), wgw(V * d, 0);
    std::vector<float> cl = randv(N), ce = randv(N), ct = randv(N);
    std::vector<double> z(V);
    for (long r = 0; r < N; r++) {
      double m = -1e300;
      for (long c = 0; c < V; c++) {
        double s = 0;
        for (long x = 0; x < d; x++) s += static_cast<double>(h[r * d + x]) * w[c * d + x];
        z[c] = s;
        m = std::max(m, s);
      }
      double S = 0, T = 0;
      for (long c = 0; c < V; c++) {
        S += std::exp(z[c] - m);
        T += std::exp(z[c] - m) * z[c];
      }
      wl[r] = m + std::log(S);
      wen[r] = wl[r] - T / S;
      wlp[r] = labels[r] == -100 ? 0 : z[labels[r]] - wl[r];
      const double cL = labels[r] == -100 ? 0 : cl[r];
      for (long c = 0; c < V; c++) {
        const double lp = z[c] - wl[r], p = std::exp(lp);
        double g = -p * (cL + ct[r] + ce[r] * (lp + wen[r]));
        if (c == labels[r]) g += cL;
        if (c == am[r]) g += ct[r];
        for (long x = 0; x < d; x++) {
          wgh[r * d + x] += g * w[c * d + x];
          wgw[c * d + x] += g * h[r * d + x];
        }
      }
    }
    char name[64];
    std::snprintf(name, sizeof name, "lce N=%ld d=%ld V=%ld", N, d, V);
    expectClose((std::string(name) + " lse").c_str(), lse.data(), wl.data(), N, 1e-5, 1e-5);
    expectClose((std::string(name) + " entropy").c_str(), ent.data(), wen.data(), N, 1e-4, 2e-5);
    expectClose((std::string(name) + " logp").c_str(), logp.data(), wlp.data(), N, 1e-4, 2e-5);
    std::vector<float> gh(N * d), gw(V * d, 0.0f);
    linearCrossEntropyBackward(h.data(), w.data(), false, labels.data(), lse.data(), ent.data(), am.data(), cl.data(),
                               ce.data(), ct.data(), gh.data(), gw.data(), N, d, V);
    expectClose((std::string(name) + " gh").c_str(), gh.data(), wgh.data(), N * d, 1e-4, 1e-5);
    expectClose((std::string(name) + " gw").c_str(), gw.data(), wgw.data(), V * d, 1e-4, 1e-5);
  }
}

double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F>
double bestMs(F f, double budget = 0.6) {
  f();
  double best = 1e30, end = seconds() + budget;
  int reps = 0;
  while (reps < 3 || seconds() < end) {
    const double t = seconds();
    f();
    best = std::min(best, (seconds() - t) * 1e3);
    if (++reps > 1000) break;
  }
  return best;
}

void timeAll(int threads) {
  poolInit(threads);
  std::printf("-- %s, %d threads --\n", isa()->name, poolSize());
  struct S {
    const char* name;
    long M, N, K;
    bool tA, tB;
  } shapes[] = {{"sq512", 512, 512, 512, false, false},      {"sq1024", 1024, 1024, 1024, false, false},
                {"sq2048", 2048, 2048, 2048, false, false},  {"q_proj fwd", 1024, 576, 576, false, true},
                {"gate fwd", 1024, 1536, 576, false, true},  {"down dX", 1024, 1536, 576, false, false},
                {"gate dW", 1536, 576, 1024, true, false},   {"lm_head fwd", 1024, 49152, 576, false, true},
                {"lm_head dW", 49152, 576, 1024, true, false}};
  for (auto& s : shapes) {
    auto A = randv(s.M * s.K), B = randv(s.K * s.N);
    std::vector<float> C(s.M * s.N);
    GemmDesc d{s.tA, s.tB, s.M, s.N, s.K, 1, A.data(), s.tA ? s.M : s.K, B.data(), s.tB ? s.K : s.N, false, 0, C.data(), s.N};
    const double ms = bestMs([&] { gemmParallel(d); });
    std::printf("gemm %-12s %6.1f GFLOP/s\n", s.name, 2.0 * s.M * s.N * s.K / ms / 1e6);
  }
  AttnShape a{1, 1024, 1024, 9, 3, 64, 0.125f, true, 0.0, 0};
  auto q = randv(1024 * 9 * 64), k = randv(1024 * 3 * 64), v = randv(1024 * 3 * 64);
  std::vector<float> o(q.size()), lse(9 * 1024), gq(q.size()), gk(k.size()), gv(v.size());
  const double af = 2.0 * 1024 * 1024 * 64 * 9;
  double ms = bestMs([&] { attention(q.data(), k.data(), v.data(), o.data(), lse.data(), a); });
  std::printf("attention fwd     %6.1f GFLOP/s\n", af / ms / 1e6);
  ms = bestMs([&] { attentionBackward(q.data(), k.data(), v.data(), o.data(), lse.data(), q.data(), gq.data(), gk.data(), gv.data(), a); });
  std::printf("attention bwd     %6.1f GFLOP/s\n", 2.5 * af / ms / 1e6);
  const long N = 1024, d = 576, V = 49152;
  auto h = randv(N * d), w = randv(V * d, -0.05f, 0.05f);
  std::vector<int32_t> labels(N, 5), am(N);
  std::vector<float> l(N), lp(N), en(N), t1(N), t2(N), gh(N * d), gw(V * d), cl(N, -1.0f / N), ce(N, 0.0f);
  LceOuts outs{l.data(), lp.data(), en.data(), am.data(), t1.data(), t2.data()};
  ms = bestMs([&] { linearCrossEntropy(h.data(), w.data(), false, labels.data(), N, d, V, outs); }, 1.0);
  std::printf("lce fwd           %6.1f GFLOP/s\n", 2.0 * N * d * V / ms / 1e6);
  ms = bestMs([&] {
    linearCrossEntropyBackward(h.data(), w.data(), false, labels.data(), l.data(), en.data(), am.data(), cl.data(), ce.data(),
                               nullptr, gh.data(), gw.data(), N, d, V);
  }, 1.0);
  std::printf("lce bwd           %6.1f GFLOP/s\n", 6.0 * N * d * V / ms / 1e6);
}

void onCrash(int sig, siginfo_t* info, void* ctx) {
  char buf[512];
  const greg_t* r = static_cast<ucontext_t*>(ctx)->uc_mcontext.gregs;
  const int n = std::snprintf(
      buf, sizeof buf,
      "\nsignal %d at address %p; rip %llx rsp %llx rax %llx rbx %llx rcx %llx rdx %llx rsi %llx rdi %llx r8 %llx "
      "r9 %llx r10 %llx r11 %llx; backtrace:\n",
      sig, info->si_addr, (unsigned long long)r[REG_RIP], (unsigned long long)r[REG_RSP], (unsigned long long)r[REG_RAX],
      (unsigned long long)r[REG_RBX], (unsigned long long)r[REG_RCX], (unsigned long long)r[REG_RDX],
      (unsigned long long)r[REG_RSI], (unsigned long long)r[REG_RDI], (unsigned long long)r[REG_R8],
      (unsigned long long)r[REG_R9], (unsigned long long)r[REG_R10], (unsigned long long)r[REG_R11]);
  (void)!write(2, buf, n);
  void* frames[64];
  const int depth = backtrace(frames, 64);
  backtrace_symbols_fd(frames, depth, 2);
  _exit(128 + sig);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  struct sigaction sa {};
  sa.sa_sigaction = onCrash;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGILL, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
  const int poolThreads = std::getenv("ISA_CHECK_THREADS") ? std::atoi(std::getenv("ISA_CHECK_THREADS")) : 0;
  poolInit(poolThreads);
  std::printf("simd level: %s (tile %dx%d), pool %d threads\n", isa()->name, isa()->mr, isa()->nr, poolSize());
  if (const char* only = std::getenv("ISA_CHECK_LCE_LOOPS")) {
    for (int i = 0, n = std::atoi(only); i < n; i++) testLce();
    std::printf("%s: %d failures\n", isa()->name, failures);
    return failures ? 1 : 0;
  }
  std::printf("isa ops\n");
  testIsaOps();
  std::printf("gemm\n");
  testGemm();
  poolInit(3);
  testGemm();
  poolInit(poolThreads);
  std::printf("attention\n");
  testAttention();
  std::printf("lce\n");
  testLce();
  std::printf("%s: %d failures\n", isa()->name, failures);
  for (int i = 1; i < argc; i++) timeAll(std::atoi(argv[i]));
  return failures ? 1 : 0;
}
