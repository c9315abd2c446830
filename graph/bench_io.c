/* bench_io.c — benchmark results out: names, the aligned table, Google
 * Benchmark's JSON layout, CSV, and the comparison with a baseline JSON
 * (read with jansson). For programs; the harness itself never prints. */
#include "bench_impl.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <time.h>

char *tg_bench_name(const tg_bench_result *r, const tg_bench_case *c, int phase, char *buf, size_t cap)
{
    if (r->threads > 1)
        snprintf(buf, cap, "%s/%s/%s/%s/threads:%d", r->op, tg_dtype_name(r->dtype), c->label,
                 tg_bench_phase_name(phase), r->threads);
    else
        snprintf(buf, cap, "%s/%s/%s/%s", r->op, tg_dtype_name(r->dtype), c->label, tg_bench_phase_name(phase));
    return buf;
}

/* Every timed phase of every case, in order. */
typedef void (*row_fn)(const tg_bench_result *r, const tg_bench_case *c, int phase, void *ud);

static void for_each_row(const tg_bench_result *const *res, int n, row_fn fn, void *ud)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; res[i] && k < res[i]->n_cases; k++) {
            const tg_bench_case *c = &res[i]->cases[k];
            if (c->status != TG_OK || c->mismatch)
                continue;
            for (int p = 0; p < TG_BENCH_N_PHASES; p++)
                if (c->phase[p].iterations > 0)
                    fn(res[i], c, p, ud);
        }
}

static const char *bound_name(int b)
{
    return b == TG_BENCH_BOUND_COMPUTE ? "compute" : b == TG_BENCH_BOUND_MEMORY ? "memory" : "unknown";
}

/* The phase's first call (fwd, bwd) or engine overhead (engine phases). */
static double first_call(const tg_bench_case *c, int p)
{
    return p == TG_BENCH_FWD ? c->first_fwd_ns : p == TG_BENCH_BWD ? c->first_bwd_ns : 0;
}

static double overhead(const tg_bench_case *c, int p)
{
    return p == TG_BENCH_ENGINE_FWD ? c->overhead_fwd_ns : p == TG_BENCH_ENGINE_FWDBWD ? c->overhead_fwdbwd_ns : 0;
}

/* ---- the table --------------------------------------------------------------- */

static char *fmt_time(double ns, char *buf, size_t cap)
{
    double a = fabs(ns);
    if (a < 1e3)
        snprintf(buf, cap, "%.1f ns", ns);
    else if (a < 1e6)
        snprintf(buf, cap, "%.2f us", ns * 1e-3);
    else if (a < 1e9)
        snprintf(buf, cap, "%.2f ms", ns * 1e-6);
    else
        snprintf(buf, cap, "%.3f s", ns * 1e-9);
    return buf;
}

static char *fmt_rate(double v, char *buf, size_t cap)
{
    if (!(v > 0))
        snprintf(buf, cap, "-");
    else if (v < 10)
        snprintf(buf, cap, "%.3f", v);
    else
        snprintf(buf, cap, "%.1f", v);
    return buf;
}

#define W_OP    14
#define W_LABEL 24

void tg_bench_print(FILE *f, const tg_bench_result *r, int header)
{
    if (header)
        fprintf(f, "%-*s %-5s %3s  %-*s %-13s %10s %10s %10s %10s %9s %8s %7s  %s\n", W_OP, "op", "dtype", "thr",
                W_LABEL, "shape", "phase", "median", "min", "IQR", "cpu", "GFLOP/s", "GB/s", "%peak",
                "first call / engine overhead");
    if (r->message[0])
        fprintf(f, "%-*s %-5s %3d  ERROR: %s\n", W_OP, r->op, tg_dtype_name(r->dtype), r->threads, r->message);
    for (int k = 0; k < r->n_cases; k++) {
        const tg_bench_case *c = &r->cases[k];
        if (c->status != TG_OK || c->mismatch) {
            fprintf(f, "%-*s %-5s %3d  %-*s %s: %s\n", W_OP, r->op, tg_dtype_name(r->dtype), r->threads, W_LABEL,
                    c->label, c->mismatch ? "MISMATCH (not timed)" : "not timed", c->message);
            continue;
        }
        int first = 1;
        for (int p = 0; p < TG_BENCH_N_PHASES; p++) {
            const tg_bench_stats *s = &c->phase[p];
            if (s->iterations <= 0)
                continue;
            char med[24], mn[24], iqr[24], cpu[24], gf[24], gb[24], pct[24], note[64] = "", t[24];
            if (s->pct_peak > 0)
                snprintf(pct, sizeof pct, "%.1f%c", s->pct_peak, s->bound == TG_BENCH_BOUND_COMPUTE ? 'c' : 'm');
            else
                snprintf(pct, sizeof pct, "-");
            if (p == TG_BENCH_FWD || p == TG_BENCH_BWD)
                snprintf(note, sizeof note, "first %s", fmt_time(first_call(c, p), t, sizeof t));
            else if (p == TG_BENCH_BWD_FRESH)
                snprintf(note, sizeof note, "into fresh gradients");
            else if (p == TG_BENCH_ENGINE_FWD || p == TG_BENCH_ENGINE_FWDBWD)
                snprintf(note, sizeof note, "overhead %s%s", overhead(c, p) >= 0 ? "+" : "",
                         fmt_time(overhead(c, p), t, sizeof t));
            char thr[16];
            snprintf(thr, sizeof thr, "%d", r->threads);
            fprintf(f, "%-*s %-5s %3s  %-*s %-13s %10s %10s %10s %10s %9s %8s %7s  %s\n",
                    W_OP, first ? r->op : "", first ? tg_dtype_name(r->dtype) : "", first ? thr : "", W_LABEL,
                    first ? c->label : "", tg_bench_phase_name(p), fmt_time(s->median_ns, med, sizeof med),
                    fmt_time(s->min_ns, mn, sizeof mn), fmt_time(s->iqr_ns, iqr, sizeof iqr),
                    fmt_time(s->cpu_ns, cpu, sizeof cpu), fmt_rate(s->gflops, gf, sizeof gf), fmt_rate(s->gbps, gb, sizeof gb), pct, note);
            first = 0;
        }
    }
}

void tg_bench_print_machine(FILE *f, const tg_bench_machine *m)
{
    int64_t llc = 0;
    for (int i = 0; i < m->n_caches; i++)
        if (m->caches[i].size > llc)
            llc = m->caches[i].size;
    fprintf(f, "machine: %s, %d CPUs at %.0f MHz, last-level cache %lld KiB, load %.2f %.2f %.2f\n",
            m->host_name, m->num_cpus, m->mhz_per_cpu, (long long)(llc >> 10), m->load_avg[0], m->load_avg[1],
            m->load_avg[2]);
    fprintf(f, "peak:    GEMM 256^3 on 1 thread: f32 %.1f GFLOP/s, f64 %.1f GFLOP/s; memory (3 x %lld MiB): "
            "triad %.1f GB/s (%d threads: %.1f), copy %.1f GB/s\n", m->gemm_gflops_f32, m->gemm_gflops_f64,
            (long long)(m->mem_array_bytes >> 20), m->mem_gbps, m->num_cpus, m->mem_gbps_all, m->copy_gbps);
    fprintf(f, "         %%peak: c = of the GEMM peak x threads (compute-bound), m = of the triad bandwidth on as many\n"
               "         threads (memory-bound)\n");
}

/* ---- JSON ---------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v) { fprintf(f, "%.10g", isfinite(v) ? v : 0.0); }

typedef struct json_state { FILE *f; int index; } json_state;

static void json_row(const tg_bench_result *r, const tg_bench_case *c, int p, void *ud)
{
    json_state *js = ud;
    FILE *f = js->f;
    const tg_bench_stats *s = &c->phase[p];
    char name[256];
    tg_bench_name(r, c, p, name, sizeof name);
    fprintf(f, "%s\n    {\n      \"name\": ", js->index ? "," : "");
    json_str(f, name);
    fprintf(f, ",\n      \"family_index\": %d,\n      \"per_family_instance_index\": 0,\n      \"run_name\": ", js->index);
    json_str(f, name);
    fprintf(f, ",\n      \"run_type\": \"iteration\",\n      \"repetitions\": 1,\n      \"repetition_index\": 0,\n"
               "      \"threads\": %d,\n      \"iterations\": %lld,\n      \"real_time\": ", r->threads,
            (long long)s->iterations);
    json_num(f, s->median_ns);
    fprintf(f, ",\n      \"cpu_time\": ");
    json_num(f, s->cpu_ns);
    fprintf(f, ",\n      \"time_unit\": \"ns\",\n      \"label\": ");
    json_str(f, bound_name(s->bound));
    fprintf(f, ",\n      \"op\": ");
    json_str(f, r->op);
    fprintf(f, ",\n      \"dtype\": \"%s\",\n      \"shape\": ", tg_dtype_name(r->dtype));
    json_str(f, c->label);
    fprintf(f, ",\n      \"phase\": \"%s\"", tg_bench_phase_name(p));
    const struct { const char *k; double v; } counters[] = {
        { "GFLOPS", s->gflops }, { "GBps", s->gbps }, { "pct_peak", s->pct_peak },
        { "min_ns", s->min_ns }, { "q1_ns", s->q1_ns }, { "q3_ns", s->q3_ns }, { "iqr_ns", s->iqr_ns },
        { "samples", s->samples }, { "flops", s->flops }, { "bytes", s->bytes },
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        fprintf(f, ",\n      \"%s\": ", counters[i].k);
        json_num(f, counters[i].v);
    }
    if (p == TG_BENCH_FWD || p == TG_BENCH_BWD) {
        fprintf(f, ",\n      \"first_call_ns\": ");
        json_num(f, first_call(c, p));
    }
    if (p >= TG_BENCH_ENGINE_FWD) {
        fprintf(f, ",\n      \"overhead_ns\": ");
        json_num(f, overhead(c, p));
    }
    fprintf(f, "\n    }");
    js->index++;
}

tg_status tg_bench_write_json(FILE *f, const tg_bench_result *const *res, int n)
{
    if (!f || (n > 0 && !res))
        return TG_ERR_ARG;
    tg_bench_machine none;
    memset(&none, 0, sizeof none);
    const tg_bench_machine *m = n > 0 && res[0] ? &res[0]->machine : &none;
    char date[64] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) {
        char z[8];
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
        strftime(z, sizeof z, "%z", &tm);                 /* +0200 -> +02:00 */
        if (strlen(z) == 5)
            snprintf(date + strlen(date), sizeof date - strlen(date), "%.3s:%.2s", z, z + 3);
    }
    fprintf(f, "{\n  \"context\": {\n    \"date\": ");
    json_str(f, date);
    fprintf(f, ",\n    \"host_name\": ");
    json_str(f, m->host_name);
    fprintf(f, ",\n    \"executable\": \"tapegrad bench\",\n    \"json_schema_version\": 1,\n    \"num_cpus\": %d,\n    \"mhz_per_cpu\": %d,\n"
               "    \"cpu_scaling_enabled\": false,\n    \"caches\": [", m->num_cpus, (int)(m->mhz_per_cpu + 0.5));
    for (int i = 0; i < m->n_caches; i++) {
        fprintf(f, "%s\n      {\n        \"type\": ", i ? "," : "");
        json_str(f, m->caches[i].type);
        fprintf(f, ",\n        \"level\": %d,\n        \"size\": %lld,\n        \"num_sharing\": %d\n      }",
                m->caches[i].level, (long long)m->caches[i].size, m->caches[i].num_sharing);
    }
    fprintf(f, "\n    ],\n    \"load_avg\": [%.2f, %.2f, %.2f],\n", m->load_avg[0], m->load_avg[1], m->load_avg[2]);
#ifdef __OPTIMIZE__
    fprintf(f, "    \"library_build_type\": \"release\",\n");
#else
    fprintf(f, "    \"library_build_type\": \"debug\",\n");
#endif
    fprintf(f, "    \"gemm_peak_f32_gflops\": ");
    json_num(f, m->gemm_gflops_f32);
    fprintf(f, ",\n    \"gemm_peak_f64_gflops\": ");
    json_num(f, m->gemm_gflops_f64);
    fprintf(f, ",\n    \"mem_triad_gbps\": ");
    json_num(f, m->mem_gbps);
    fprintf(f, ",\n    \"mem_copy_gbps\": ");
    json_num(f, m->copy_gbps);
    fprintf(f, ",\n    \"mem_triad_gbps_all_cpus\": ");
    json_num(f, m->mem_gbps_all);
    fprintf(f, ",\n    \"mem_probe_array_bytes\": %lld\n  },\n  \"benchmarks\": [", (long long)m->mem_array_bytes);
    json_state js = { f, 0 };
    for_each_row(res, n, json_row, &js);
    fprintf(f, "\n  ]\n}\n");
    return ferror(f) ? TG_ERR_IO : TG_OK;
}

/* ---- CSV ----------------------------------------------------------------------- */

static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_row(const tg_bench_result *r, const tg_bench_case *c, int p, void *ud)
{
    FILE *f = ud;
    const tg_bench_stats *s = &c->phase[p];
    char name[256];
    csv_str(f, tg_bench_name(r, c, p, name, sizeof name));
    fputc(',', f);
    csv_str(f, r->op);
    fprintf(f, ",%s,", tg_dtype_name(r->dtype));
    csv_str(f, c->label);
    fprintf(f, ",%d,%s,%lld,%d,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,%.6g,%.6g,%s,%.4g,%.10g,%.10g\n",
            r->threads, tg_bench_phase_name(p), (long long)s->iterations, s->samples, s->median_ns, s->min_ns,
            s->q1_ns, s->q3_ns, s->iqr_ns, s->cpu_ns, s->flops, s->bytes, s->gflops, s->gbps,
            bound_name(s->bound), s->pct_peak, first_call(c, p), overhead(c, p));
}

tg_status tg_bench_write_csv(FILE *f, const tg_bench_result *const *res, int n)
{
    if (!f || (n > 0 && !res))
        return TG_ERR_ARG;
    fprintf(f, "name,op,dtype,shape,threads,phase,iterations,samples,median_ns,min_ns,q1_ns,q3_ns,iqr_ns,"
               "cpu_ns,flops,bytes,gflops,gbps,bound,pct_peak,first_call_ns,overhead_ns\n");
    for_each_row(res, n, csv_row, f);
    return ferror(f) ? TG_ERR_IO : TG_OK;
}

/* ---- baseline comparison ------------------------------------------------------- */

typedef struct base_entry { const char *name; double ns; } base_entry;

typedef struct cmp_state {
    tg_bench_comparison *cmp;
    const base_entry    *base;
    size_t               n_base;
    int                  nomem;
} cmp_state;

static void cmp_row(const tg_bench_result *r, const tg_bench_case *c, int p, void *ud)
{
    cmp_state *cs = ud;
    tg_bench_comparison *cmp = cs->cmp;
    char name[256];
    tg_bench_name(r, c, p, name, sizeof name);
    const base_entry *b = NULL;
    for (size_t i = 0; i < cs->n_base && !b; i++)
        if (strcmp(cs->base[i].name, name) == 0)
            b = &cs->base[i];
    if (!b || !(b->ns > 0)) {
        cmp->n_new++;
        return;
    }
    tg_bench_delta *d = &cmp->deltas[cmp->n_deltas++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->base_ns = b->ns;
    d->new_ns = c->phase[p].median_ns;
    d->change = d->new_ns / d->base_ns - 1;
    d->regression = d->change > cmp->threshold;
    cmp->n_compared++;
    cmp->n_regressions += d->regression;
    cmp->n_improvements += d->change < -cmp->threshold;
}

static void count_row(const tg_bench_result *r, const tg_bench_case *c, int p, void *ud)
{
    (void)r, (void)c, (void)p;
    (*(size_t *)ud)++;
}

static double unit_ns(const char *u)
{
    if (!u || !strcmp(u, "ns")) return 1;
    if (!strcmp(u, "us")) return 1e3;
    if (!strcmp(u, "ms")) return 1e6;
    if (!strcmp(u, "s")) return 1e9;
    return 0;
}

tg_status tg_bench_compare(const char *path, const tg_bench_result *const *res, int n, double threshold,
                           tg_bench_comparison *cmp)
{
    if (!cmp)
        return TG_ERR_ARG;
    memset(cmp, 0, sizeof *cmp);
    cmp->threshold = threshold > 0 ? threshold : 0.1;
    if (!path || (n > 0 && !res)) {
        snprintf(cmp->message, sizeof cmp->message, "no baseline file or no results");
        return TG_ERR_ARG;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        FILE *probe = fopen(path, "rb");
        snprintf(cmp->message, sizeof cmp->message, "%s: %s", path,
                 probe ? jerr.text : "cannot open the file");
        if (probe)
            fclose(probe);
        return probe ? TG_ERR_FORMAT : TG_ERR_IO;
    }
    json_t *list = json_object_get(root, "benchmarks");
    if (!json_is_array(list)) {
        snprintf(cmp->message, sizeof cmp->message, "%s: no \"benchmarks\" array (not a benchmark JSON file)", path);
        json_decref(root);
        return TG_ERR_FORMAT;
    }
    size_t nb = json_array_size(list), n_base = 0, n_rows = 0;
    base_entry *base = tg_malloc((nb ? nb : 1) * sizeof *base);
    for_each_row(res, n, count_row, &n_rows);
    cmp->deltas = tg_calloc((n_rows ? n_rows : 1) * sizeof *cmp->deltas);
    if (!base || !cmp->deltas) {
        tg_free(base);
        tg_bench_comparison_free(cmp);
        json_decref(root);
        snprintf(cmp->message, sizeof cmp->message, "out of memory");
        return TG_ERR_NOMEM;
    }
    for (size_t i = 0; i < nb; i++) {
        json_t *e = json_array_get(list, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *rt = json_string_value(json_object_get(e, "run_type"));
        json_t *t = json_object_get(e, "real_time");
        double u = unit_ns(json_string_value(json_object_get(e, "time_unit")));
        if (!name || !json_is_number(t) || u == 0 || (rt && strcmp(rt, "iteration") != 0))
            continue;
        base[n_base].name = name;
        base[n_base].ns = json_number_value(t) * u;
        n_base++;
    }
    cmp_state cs = { cmp, base, n_base, 0 };
    for_each_row(res, n, cmp_row, &cs);
    tg_free(base);
    json_decref(root);
    return TG_OK;
}

void tg_bench_comparison_free(tg_bench_comparison *cmp)
{
    if (!cmp)
        return;
    tg_free(cmp->deltas);
    cmp->deltas = NULL;
    cmp->n_deltas = 0;
}

void tg_bench_comparison_print(FILE *f, const tg_bench_comparison *cmp)
{
    char a[24], b[24];
    fprintf(f, "baseline comparison (median real time, threshold %.0f%%):\n", 100 * cmp->threshold);
    for (int i = 0; i < cmp->n_deltas; i++) {
        const tg_bench_delta *d = &cmp->deltas[i];
        if (fabs(d->change) <= cmp->threshold)
            continue;
        fprintf(f, "  %-56s %10s -> %10s  %+7.1f%%  %s\n", d->name, fmt_time(d->base_ns, a, sizeof a),
                fmt_time(d->new_ns, b, sizeof b), 100 * d->change, d->regression ? "REGRESSION" : "faster");
    }
    fprintf(f, "%d compared, %d regressions, %d improvements, %d not in the baseline\n", cmp->n_compared,
            cmp->n_regressions, cmp->n_improvements, cmp->n_new);
}
