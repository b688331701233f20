// bench_hnswlib.cc — hnswlib (Debian's header-only libhnswlib-dev) on the
// same vectors and ground truth as bench_vec (0.6.2 has no filtered search), for a comparison in
// one run (bench/bench_vec.sh). Never a dependency of cairn: CMake builds it
// only where the header is installed.
//
//   bench_hnswlib BASE.fbin QUERIES.fbin GT [--ef LIST]
// Prints one JSON object like bench_vec --json.
#include <hnswlib/hnswlib.h>
#include <algorithm>
#include <ctime>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static double cpu_s()
{
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static std::vector<float> read_fbin(const char *path, uint32_t &n, uint32_t &d)
{
    FILE *f = fopen(path, "rb");
    if (!f || fread(&n, 4, 1, f) != 1 || fread(&d, 4, 1, f) != 1) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    std::vector<float> v((size_t)n * d);
    if (fread(v.data(), sizeof(float) * d, n, f) != n) {
        fprintf(stderr, "%s: short\n", path);
        exit(1);
    }
    fclose(f);
    for (uint32_t i = 0; i < n; i++) {
        double s = 0;
        for (uint32_t j = 0; j < d; j++)
            s += (double)v[(size_t)i * d + j] * v[(size_t)i * d + j];
        float inv = s > 0 ? (float)(1 / std::sqrt(s)) : 0;
        for (uint32_t j = 0; j < d; j++)
            v[(size_t)i * d + j] *= inv;
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    std::string eflist = "10,16,24,32,48,64,96,128,192,256";
    for (int i = 4; i < argc; i++)
        if (!strcmp(argv[i], "--ef") && i + 1 < argc)
            eflist = argv[++i];
    uint32_t n, d, nq, dq;
    auto base = read_fbin(argv[1], n, d);
    auto qs = read_fbin(argv[2], nq, dq);
    FILE *f = fopen(argv[3], "rb");
    uint32_t hdr[2];
    if (!f || fread(hdr, 4, 2, f) != 2)
        return 1;
    std::vector<uint32_t> truth((size_t)hdr[0] * hdr[1]);
    if (fread(truth.data(), 4, truth.size(), f) != truth.size())
        return 1;
    fclose(f);
    const int K = (int)hdr[1];
    hnswlib::InnerProductSpace space(d);
    hnswlib::HierarchicalNSW<float> alg(&space, n, 16, 200, 100);
    double t0 = now_s(), bc0 = cpu_s();
    for (uint32_t i = 0; i < n; i++)
        alg.addPoint(base.data() + (size_t)i * d, i);
    double build_s = now_s() - t0, build_cpu_s = cpu_s() - bc0;
    printf("{\"engine\": \"hnswlib\", \"n\": %u, \"build_s\": %.3f, \"build_cpu_s\": %.3f, \"runs\": [", n, build_s,
           build_cpu_s);
    size_t pos = 0;
    bool first = true;
    while (pos < eflist.size()) {
        size_t c = eflist.find(',', pos);
        if (c == std::string::npos)
            c = eflist.size();
        int ef = atoi(eflist.substr(pos, c - pos).c_str());
        pos = c + 1;
        alg.setEf(ef);
        double rec[1], qps[1], cqps[1];
        for (int pass = 0; pass < 1; pass++) {
            const std::vector<uint32_t> &t = truth;
            for (uint32_t q = 0; q < nq / 10; q++)
                alg.searchKnn(qs.data() + (size_t)q * d, K);
            size_t hit = 0, tot = 0;
            double tq[3], tc[3];
            for (int rep = 0; rep < 3; rep++) {
            hit = tot = 0;
            double s0 = now_s(), c0 = cpu_s();
            for (uint32_t q = 0; q < nq; q++) {
                auto res = alg.searchKnn(qs.data() + (size_t)q * d, K);
                std::vector<uint32_t> got;
                while (!res.empty()) {
                    got.push_back((uint32_t)res.top().second);
                    res.pop();
                }
                for (int j = 0; j < K; j++) {
                    uint32_t tv = t[(size_t)q * K + j];
                    if (tv == UINT32_MAX)
                        continue;
                    tot++;
                    for (uint32_t g : got)
                        if (g == tv) {
                            hit++;
                            break;
                        }
                }
            }
            tq[rep] = nq / (now_s() - s0);
            tc[rep] = nq / (cpu_s() - c0);
            }
            std::sort(tq, tq + 3);
            std::sort(tc, tc + 3);
            cqps[pass] = tc[1];
            rec[pass] = tot ? (double)hit / tot : 1;
            qps[pass] = tq[1];   // median of three passes
        }
        printf("%s{\"ef\": %d, \"recall\": %.4f, \"qps\": %.0f, \"cpu_qps\": %.0f}", first ? "" : ", ", ef, rec[0],
               qps[0], cqps[0]);
        first = false;
    }
    printf("]}\n");
    return 0;
}
