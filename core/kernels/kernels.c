/* kernels.c - fills the kernel table. Natively on x86-64 the ISA is chosen at run time from
 * cpuid: the one a table of measured CPU families names for this CPU (preferences[] below), else
 * the widest it runs, AVX-512 (F), AVX2+FMA or the portable scalar C, unless a front end asks
 * for another through q4_kernels_select (e.g. from Q4_ISA). Only the kernel files are
 * compiled for their ISA (Makefile), so one binary runs on every x86-64 CPU. The WebAssembly
 * build has one ISA, SIMD128. Within an ISA the GEMM variant (tile sizes) is chosen by name,
 * with a default per ISA. */
#include <stdio.h>
#include <string.h>

#include "../util/util.h"
#include "kernels.h"
#include "ref/ref.h"

#if defined(__wasm_simd128__)
#include "wasmsimd/wasmsimd.h"
#define Q4_HAVE_WASMSIMD 1
#elif (defined(__x86_64__) || defined(__i386__)) && !defined(Q4_NO_X86_KERNELS)
#include "avx2/avx2.h"
#include "avx512/avx512.h"
#define Q4_HAVE_X86 1
#include <cpuid.h>
#endif

/* Winograd from 64 channels: the threshold every build's exact variant uses (the portable
 * build is the reference, not the fast path) */
static const q4_gemm_variant scalar_4x8 = {"f32-gemm-4x8-scalar", 4, 8, 256, 64, 1024,
                                           q4_ref_microkernel_4x8, NULL, NULL, NULL, 64, 64};

static const q4_kernels reference_table = {
    "scalar",
    &scalar_4x8,
    &q4_ref_iconv_4x8,
    q4_ref_sum,
    q4_ref_centered_sum_squares,
    q4_ref_sum_squares,
    q4_ref_add_scalar,
    q4_ref_scale,
    q4_ref_affine_relu,
    q4_ref_affine_relu_backward_sums,
    q4_ref_affine_relu_backward_apply,
    q4_ref_maxpool2_forward,
    q4_ref_maxpool2_backward,
    q4_ref_max_abs,
    q4_ref_quantize,
    q4_ref_adamw,
    q4_ref_tanh_clip,
    q4_ref_sgd,
    q4_ref_ema,
    q4_ref_winograd_input,
    q4_ref_winograd_output,
    q4_ref_winograd_gradient,
    q4_ref_winograd_spread,
    q4_ref_winograd_merge,
    q4_ref_iquantize_rows,
    &q4_ref_iwinograd_4x8,
};

const q4_kernels *q4_kernels_reference(void) { return &reference_table; }

/* One instruction set: its elementwise table, its GEMM variants (the first is the default)
 * and the one exact mode uses (no fused multiply-add, kc 256, Winograd from 64 channels, so
 * that every ISA computes the same bits). */
typedef struct isa {
    const char *name;
    int (*supported)(void);
    const q4_kernels *table;
    void (*adjust)(q4_kernels *table); /* optional: kernels it takes from another set's table */
    const q4_gemm_variant *const *variants;
    const q4_gemm_variant *exact;
} isa;

static int always(void) { return 1; }
#if !defined(Q4_HAVE_WASMSIMD)
static const q4_gemm_variant *const scalar_variants[] = {&scalar_4x8, NULL};
#endif

#if defined(Q4_HAVE_X86)
/* __builtin_cpu_supports also checks that the OS saves the vector registers (xgetbv) */
static int has_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
static int has_avx512(void) { return has_avx2() && __builtin_cpu_supports("avx512f"); }
static const q4_gemm_variant *const avx2_variants[] = {&q4_avx2_gemm_4x24, &q4_avx2_gemm_6x16,
                                                       &q4_avx2_gemm_4x24_nofma, NULL};
static const q4_gemm_variant *const avx512_variants[] = {&q4_avx512_gemm_12x32, &q4_avx512_gemm_8x32,
                                                         &q4_avx512_gemm_12x32_nofma, NULL};
/* AVX-512: the AVX2 elementwise kernels (memory-bound; see avx512.h), its own transforms, and
 * the VNNI integer convolution where the CPU has VNNI (else AVX2's) */
static int has_avx512vnni(void) { return has_avx512() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"); }
static void avx512_transforms(q4_kernels *t) {
    if (has_avx512vnni()) {
        t->iconv = &q4_avx512_iconv_8x32;
        t->iquantize_rows = q4_avx512_iquantize_rows;
    }
    t->winograd_input = q4_avx512_winograd_input;
    t->winograd_output = q4_avx512_winograd_output;
    t->winograd_gradient = q4_avx512_winograd_gradient;
    t->winograd_spread = q4_avx512_winograd_spread;
    t->winograd_merge = q4_avx512_winograd_merge;
}
static const isa isas[] = {
    {"avx512", has_avx512, &q4_avx2_kernels, avx512_transforms, avx512_variants, &q4_avx512_gemm_12x32_nofma},
    {"avx2", has_avx2, &q4_avx2_kernels, NULL, avx2_variants, &q4_avx2_gemm_4x24_nofma},
    {"scalar", always, &reference_table, NULL, scalar_variants, &scalar_4x8},
};
#elif defined(Q4_HAVE_WASMSIMD)
static const q4_gemm_variant *const wasmsimd_variants[] = {&q4_wasmsimd_gemm_4x8, &q4_wasmsimd_gemm_6x8,
                                                           &scalar_4x8, NULL};
static const isa isas[] = {
    {"wasmsimd", always, &q4_wasmsimd_kernels, NULL, wasmsimd_variants, &q4_wasmsimd_gemm_4x8},
};
#else
static const isa isas[] = {
    {"scalar", always, &reference_table, NULL, scalar_variants, &scalar_4x8},
};
#endif
#define ISA_COUNT (int)(sizeof isas / sizeof isas[0])

/* what sessions use; set only by q4_kernels_select, before sessions are created */
static const isa *selected_isa;
static const q4_gemm_variant *selected_variant;

/* Which instruction set a CPU that runs several gets by default: a row per CPU family where one
 * was measured (make bench, which also runs the next ISA down: training and evaluation images/s
 * at 2 threads, interleaved); a CPU without a row, or whose row names an ISA it lacks (one family
 * may hold CPUs with and without AVX-512: AMD's 19h has Zen 3 and Zen 4), gets the widest it runs,
 * the order of isas[]. A fixed
 * table rather than a measurement at start: a run's kernels, and so its bits outside exact mode,
 * must not depend on how busy the machine was when it started (run cards are verified by
 * recomputing with the same kernels). */
static const q4_isa_preference preferences[] = {
    {"AuthenticAMD", 0x1a, "avx512",
     "AMD family 1Ah (Zen 5; an EPYC, model 2, 2 cores): AVX-512 trains at 290 images/s against AVX2's "
     "248 and evaluates at 941 against 903 (2 threads, medians of 6 interleaved runs, 2026-12-05)"},
};

const q4_isa_preference *q4_isa_preference_find(const char *vendor, int family, const char *available) {
    for (size_t i = 0; i < sizeof preferences / sizeof preferences[0]; i++) {
        const q4_isa_preference *p = &preferences[i];
        if (strcmp(p->vendor, vendor) || p->family != family) continue;
        size_t n = strlen(p->isa); /* the row counts only where its ISA is one of `available` */
        for (const char *a = strstr(available, p->isa); a; a = strstr(a + 1, p->isa))
            if ((a == available || a[-1] == ' ') && (a[n] == ' ' || a[n] == '\0')) return p;
    }
    return NULL;
}

/* This CPU's vendor and family (base + extended) from cpuid; "" and 0 where there is none. */
static void cpu_family(char vendor[13], int *family) {
    vendor[0] = '\0';
    *family = 0;
#if defined(Q4_HAVE_X86)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    vendor[12] = '\0';
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    *family = (int)((a >> 8) & 15);
    if (*family == 15) *family += (int)((a >> 20) & 255);
#endif
}

/* The default ISA and why, worked out once */
static const isa *default_isa;
static char default_reason[512];

static const isa *best_isa(void) {
    if (default_isa) return default_isa;
    char vendor[13];
    int family;
    cpu_family(vendor, &family);
    const q4_isa_preference *p = q4_isa_preference_find(vendor, family, q4_kernels_available());
    for (int i = 0; i < ISA_COUNT && !default_isa; i++)
        if (isas[i].supported() && (!p || !strcmp(isas[i].name, p->isa))) default_isa = &isas[i];
    if (!default_isa) default_isa = &isas[ISA_COUNT - 1];
    if (p) snprintf(default_reason, sizeof default_reason, "%s, measured faster on %s", p->isa, p->why);
    else if (ISA_COUNT > 1)
        snprintf(default_reason, sizeof default_reason, "%s, the widest this CPU runs (no measurement for %s family %xh)",
                 default_isa->name, vendor[0] ? vendor : "this CPU", family);
    else snprintf(default_reason, sizeof default_reason, "%s, this build's one instruction set", default_isa->name);
    return default_isa;
}

const char *q4_kernels_choice(void) {
    static char text[600];
    if (selected_isa) snprintf(text, sizeof text, "%s, chosen by the caller (Q4_ISA or Q4_GEMM_VARIANT)", selected_isa->name);
    else {
        best_isa();
        snprintf(text, sizeof text, "%s", default_reason);
    }
    return text;
}

static const isa *current_isa(void) { return selected_isa ? selected_isa : best_isa(); }

const char *q4_kernels_available(void) {
    static char list[64];
    list[0] = '\0';
    for (int i = 0; i < ISA_COUNT; i++)
        if (isas[i].supported())
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? " " : "", isas[i].name);
    return list;
}

q4_status q4_kernels_select(const char *isa_name, const char *variant, q4_error *err) {
    const isa *chosen = NULL;
    if (isa_name && *isa_name) {
        int known = 0;
        for (int i = 0; i < ISA_COUNT; i++)
            if (strcmp(isas[i].name, isa_name) == 0) {
                known = 1;
                if (isas[i].supported()) chosen = &isas[i];
            }
        if (!chosen)
            return q4_fail(err, Q4_ERR_ARGUMENT, "%s instruction set '%s' (this CPU and build have: %s)",
                           known ? "this CPU lacks the" : "unknown", isa_name, q4_kernels_available());
    }
    const q4_gemm_variant *found = NULL;
    if (variant && *variant) {
        for (int i = 0; i < ISA_COUNT && !found; i++) {
            if ((chosen && &isas[i] != chosen) || !isas[i].supported()) continue;
            for (int k = 0; isas[i].variants[k]; k++)
                if (strcmp(isas[i].variants[k]->name, variant) == 0) {
                    found = isas[i].variants[k];
                    chosen = &isas[i];
                    break;
                }
        }
        if (!found) {
            const isa *in = chosen ? chosen : best_isa();
            char names[256] = "";
            for (int k = 0; in->variants[k]; k++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", k ? ", " : "",
                         in->variants[k]->name);
            return q4_fail(err, Q4_ERR_ARGUMENT, "unknown GEMM variant '%s' (%s has %s)", variant, in->name, names);
        }
    }
    selected_isa = chosen;
    selected_variant = found;
    return Q4_OK;
}

void q4_kernels_init_with(q4_kernels *table, const q4_gemm_variant *variant) {
    const isa *in = current_isa(); /* or, for another ISA's variant, that ISA */
    int own = 0;
    for (int k = 0; in->variants[k]; k++) own |= in->variants[k] == variant;
    for (int i = 0; i < ISA_COUNT && !own; i++)
        for (int k = 0; isas[i].variants[k]; k++)
            if (isas[i].variants[k] == variant) in = &isas[i], own = 1;
    *table = *in->table;
    if (in->adjust) in->adjust(table);
    table->name = in->name;
    table->gemm = variant;
}

void q4_kernels_init(q4_kernels *table, int exact_mode) {
    const isa *in = current_isa();
    if (!exact_mode) {
        q4_kernels_init_with(table, selected_variant ? selected_variant : in->variants[0]);
        return;
    }
    q4_kernels_init_with(table, in->exact);
    /* reductions in the scalar order (double sums, one element after the other) */
    table->sum = q4_ref_sum;
    table->centered_sum_squares = q4_ref_centered_sum_squares;
    table->sum_squares = q4_ref_sum_squares;
    table->affine_relu_backward_sums = q4_ref_affine_relu_backward_sums;
    table->tanh_clip = q4_exact_tanh_clip;
}

const q4_gemm_variant *const *q4_gemm_variants(const char *isa_name) {
    const isa *in = current_isa();
    if (isa_name)
        for (int i = 0; i < ISA_COUNT; i++)
            if (strcmp(isas[i].name, isa_name) == 0) in = &isas[i];
    return in->variants;
}

const char *q4_kernels_name(void) {
    static char name[96];
    const isa *in = current_isa();
    snprintf(name, sizeof name, "%s %s", in->name, (selected_variant ? selected_variant : in->variants[0])->name);
    return name;
}
