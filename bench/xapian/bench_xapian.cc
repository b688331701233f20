// bench_xapian.cc — Xapian 1.4 (BM25 with its dynamic pruning) on the
// workload bench_bm25 --dump writes: the same chunks, the same queries, top
// 10. A comparison for bench/bench_xapian.sh only: cairn never links Xapian.
//
//   bench_xapian DIR [--k N]      (DIR/chunks.txt, DIR/queries.txt)
//
// Index: an on-disk glass database in DIR/xapian.db, English stemmer, the
// Lucene stop words. Queries: QueryParser, OR of the terms, stemmed like the
// documents, BM25 k1 1.2 b 0.75. Latency per query is parse + get_mset,
// measured as wall time and as the thread's CPU time, after one warm-up pass.
#include <xapian.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

static double cpu_ms()
{
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double wall_ms()
{
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

static double pct(std::vector<double> v, double p)
{
    std::sort(v.begin(), v.end());
    size_t i = (size_t)(p * (double)(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

static std::vector<std::string> read_lines(const std::string &path)
{
    std::ifstream in(path);
    if (!in) {
        std::fprintf(stderr, "bench_xapian: cannot read %s\n", path.c_str());
        std::exit(1);
    }
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: bench_xapian DIR [--k N]\n");
        return 2;
    }
    std::string dir = argv[1];
    unsigned k = 10;
    for (int i = 2; i < argc; i++)
        if (!std::strcmp(argv[i], "--k") && i + 1 < argc)
            k = (unsigned)std::atoi(argv[++i]);
    std::vector<std::string> chunks = read_lines(dir + "/chunks.txt");
    std::vector<std::string> queries = read_lines(dir + "/queries.txt");

    static const char *stop[] = {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if",
                                 "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that",
                                 "the", "their", "then", "there", "these", "they", "this", "to", "was",
                                 "will", "with"};
    Xapian::SimpleStopper stopper(std::begin(stop), std::end(stop));
    Xapian::Stem stem("english");
    const std::string dbpath = dir + "/xapian.db";
    double t0 = wall_ms();
    {
        Xapian::WritableDatabase db(dbpath, Xapian::DB_CREATE_OR_OVERWRITE);
        Xapian::TermGenerator tg;
        tg.set_stemmer(stem);
        tg.set_stopper(&stopper);
        db.begin_transaction(false);
        for (const std::string &c : chunks) {
            Xapian::Document doc;
            tg.set_document(doc);
            tg.index_text(c);
            db.add_document(doc);
        }
        db.commit_transaction();
        db.commit();
    }
    double build_s = (wall_ms() - t0) / 1e3;

    Xapian::Database db(dbpath);
    Xapian::QueryParser qp;
    qp.set_stemmer(stem);
    qp.set_stemming_strategy(Xapian::QueryParser::STEM_SOME);
    qp.set_stopper(&stopper);
    qp.set_default_op(Xapian::Query::OP_OR);
    qp.set_database(db);
    Xapian::Enquire enq(db);
    enq.set_weighting_scheme(Xapian::BM25Weight(1.2, 0, 1, 0.75, 0.5));

    auto run = [&](const std::string &q) {
        Xapian::Query query = qp.parse_query(q);
        enq.set_query(query);
        Xapian::MSet m = enq.get_mset(0, k);
        return m.size();
    };
    for (const std::string &q : queries)   // warm-up: pages in the cache
        run(q);
    std::vector<double> wall, cpu;
    size_t hits = 0;
    for (const std::string &q : queries) {
        double w0 = wall_ms(), c0 = cpu_ms();
        hits += run(q);
        cpu.push_back(cpu_ms() - c0);
        wall.push_back(wall_ms() - w0);
    }
    std::printf("{\"engine\": \"xapian %s\", \"chunks\": %zu, \"queries\": %zu, \"k\": %u, \"build_s\": %.2f, "
                "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"cpu_p50_ms\": %.3f, \"cpu_p99_ms\": %.3f, \"hits\": %zu}\n",
                Xapian::version_string(), chunks.size(), queries.size(), k, build_s, pct(wall, 0.5),
                pct(wall, 0.99), pct(cpu, 0.5), pct(cpu, 0.99), hits);
    return 0;
}
