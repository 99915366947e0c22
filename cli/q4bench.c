/* q4bench.c - training and evaluation speed of the engine (batch 128 unless told) on synthetic
 * images (like torch_ref.py --bench): images/s, GFLOP/s, and where one training step
 * spends its time, per layer and direction. Prints text, or one JSON object with --json.
 * Usage: q4bench [--threads T] [--steps N] [--batch N] [--fp32] [--exact] [--integer] [--json]
 *        (--integer: the evaluation in integer arithmetic, setting integer_eval; --act-bits B:
 *        conv2-6 in integer arithmetic at B-bit activations in training too, setting act_bits)
 *        q4bench --kernels | --isas   (the kernels it would use; the ISAs this CPU has)
 *        q4bench --plan [--exact]     (the algorithm of each convolution in each pass)
 * Q4_ISA (avx512, avx2, scalar) and Q4_GEMM_VARIANT choose the kernels, as for q4train. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/include/q4.h"

int main(int argc, char **argv) {
    int threads = 1, steps = 8, batch = 128, fp32 = 0, exact = 0, json = 0, plan = 0, eval_images = 1024, integer = 0;
    int act_bits = Q4_FP32_BITS;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fp32")) fp32 = 1;
        else if (!strcmp(argv[i], "--exact")) exact = 1;
        else if (!strcmp(argv[i], "--integer")) integer = 1;
        else if (!strcmp(argv[i], "--act-bits") && i + 1 < argc) act_bits = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--plan")) plan = 1;
        else if (!strcmp(argv[i], "--kernels") || !strcmp(argv[i], "--isas")) {
            q4_error err = {0};
            if (q4_kernels_select(getenv("Q4_ISA"), getenv("Q4_GEMM_VARIANT"), &err)) {
                fprintf(stderr, "q4bench: %s\n", err.message);
                return 2;
            }
            puts(!strcmp(argv[i], "--isas") ? q4_kernels_available() : q4_kernels_name());
            return 0;
        } else {
            fprintf(stderr, "usage: q4bench [--threads T] [--steps N] [--batch N] [--fp32] [--exact] [--integer] [--act-bits B] [--json] | --plan | "
                            "--kernels | --isas\n");
            return 2;
        }
    }
    if (threads < 1 || steps < 1 || batch < 2 || batch > 1024) return 2;
    /* synthetic images: enough for the warm-up and timed steps without an epoch end */
    int train_count = batch * (steps + 3);
    int total = train_count + eval_images;
    uint8_t *pixels = malloc((size_t)total * Q4_IMAGE_BYTES), *labels = malloc((size_t)total);
    if (!pixels || !labels) return 1;
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < (size_t)total * Q4_IMAGE_BYTES; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        pixels[i] = (uint8_t)x;
    }
    for (int i = 0; i < total; i++) labels[i] = (uint8_t)(i % 10);
    q4_dataset train = {train_count, 10, 1, {{train_count, pixels, labels, NULL}}};
    q4_dataset test = {eval_images, 10, 1, {{eval_images, pixels + (size_t)train_count * Q4_IMAGE_BYTES,
                                             labels + train_count, NULL}}};
    q4_error err = {0};
    if (q4_kernels_select(getenv("Q4_ISA"), getenv("Q4_GEMM_VARIANT"), &err)) {
        fprintf(stderr, "q4bench: %s\n", err.message);
        return 2;
    }
    q4_config config;
    q4_config_default(&config);
    config.threads = threads;
    config.batch_size = batch;
    config.weight_bits = fp32 ? Q4_FP32_BITS : 4;
    config.exact = exact;
    config.integer_eval = integer;
    config.act_bits = act_bits;
    q4_session *s = q4_session_create(&config, &train, &test, &err);
    if (!s) {
        fprintf(stderr, "q4bench: %s\n", err.message);
        return 1;
    }
    if (plan) {
        char text[2048];
        q4_session_plan(s, 0, text, sizeof text);
        printf("q4 %s%s (this CPU: %s)\nISA: %s\n%s", q4_session_kernels(s), exact ? ", exact mode" : "",
               q4_kernels_available(), q4_kernels_choice(), text);
        q4_session_destroy(s);
        free(pixels);
        free(labels);
        return 0;
    }
    q4_progress p;
    q4_session_train(s, 2, &p); /* warm-up: first touches of every buffer */
    q4_session_profile_reset(s);
    double t0 = q4_now();
    for (int i = 0; i < steps; i++) q4_session_train(s, 1, &p);
    double train_seconds = q4_now() - t0;
    q4_profile profile;
    q4_session_profile(s, &profile);
    q4_evaluation e;
    q4_session_evaluate(s, &e, NULL, 0); /* warm-up */
    q4_session_profile_reset(s);
    t0 = q4_now();
    q4_session_evaluate(s, &e, NULL, 0);
    double eval_seconds = q4_now() - t0;
    q4_profile eval_profile; /* where the evaluation spends its time (its forward passes' phases) */
    q4_session_profile(s, &eval_profile);

    double train_ips = (double)batch * steps / train_seconds, eval_ips = eval_images / eval_seconds;
    double train_gflops = train_ips * profile.flops_per_image_total / 1e9;
    double eval_gflops = eval_ips * profile.forward_flops_per_image / 1e9;
    if (json) {
        printf("{\"kernels\":\"%s\",\"threads\":%d,\"quantized\":%d,\"batch\":%d,\"steps\":%d,"
               "\"train_images_per_second\":%.2f,\"train_gflops\":%.2f,\"eval_images_per_second\":%.2f,"
               "\"eval_gflops\":%.2f,\"train_flops_per_image\":%.0f,\"memory_bytes\":%zu,\"phases\":[",
               q4_session_kernels(s), threads, !fp32, batch, steps, train_ips, train_gflops, eval_ips, eval_gflops,
               profile.flops_per_image_total, q4_session_memory_bytes(s));
        for (int i = 0; i < profile.phases; i++)
            printf("%s{\"name\":\"%s\",\"ms_per_step\":%.3f,\"gflops\":%.2f}", i ? "," : "", profile.names[i],
                   1e3 * profile.seconds[i] / steps,
                   profile.seconds[i] > 0 ? profile.flops_per_image[i] * profile.images / profile.seconds[i] / 1e9 : 0);
        printf("],\"eval_phases\":[");
        for (int i = 0, first = 1; i < eval_profile.phases; i++) {
            if (eval_profile.seconds[i] <= 0) continue;
            printf("%s{\"name\":\"%s\",\"ms_per_image\":%.4f}", first ? "" : ",", eval_profile.names[i],
                   1e3 * eval_profile.seconds[i] / eval_images);
            first = 0;
        }
        printf("]}\n");
    } else {
        printf("q4 %s%s, %d thread%s, batch %d, %s weights%s\n", q4_session_kernels(s), exact ? " (exact mode)" : "",
               threads, threads > 1 ? "s" : "", batch, fp32 ? "FP32" : "4-bit",
               act_bits < Q4_FP32_BITS ? ", conv2-6 on integer activations" : "");
        printf("  training:   %7.1f images/s  %6.1f GFLOP/s  (%.2f GFLOP per image)\n", train_ips, train_gflops,
               profile.flops_per_image_total / 1e9);
        printf("  evaluation: %7.1f images/s  %6.1f GFLOP/s%s\n", eval_ips, eval_gflops,
               integer ? " (integer arithmetic)" : "");
        double step_ms = 1e3 * train_seconds / steps, listed = 0;
        printf("  one training step: %.1f ms\n", step_ms);
        for (int i = 0; i < profile.phases; i++) {
            double ms = 1e3 * profile.seconds[i] / steps;
            listed += ms;
            if (ms < 0.05) continue;
            printf("    %-26s %7.2f ms %5.1f%%", profile.names[i], ms, 100 * ms / step_ms);
            if (profile.flops_per_image[i] > 0)
                printf("  %6.1f GFLOP/s", profile.flops_per_image[i] * profile.images / profile.seconds[i] / 1e9);
            printf("\n");
        }
        printf("    %-26s %7.2f ms\n", "(outside the phases)", step_ms - listed);
        printf("  one evaluation of %d images: %.1f ms\n", eval_images, 1e3 * eval_seconds);
        for (int i = 0; i < eval_profile.phases; i++)
            if (eval_profile.seconds[i] >= 0.00005)
                printf("    %-26s %7.2f ms %5.1f%%\n", eval_profile.names[i], 1e3 * eval_profile.seconds[i],
                       100 * eval_profile.seconds[i] / eval_seconds);
    }
    q4_session_destroy(s);
    free(pixels);
    free(labels);
    return 0;
}
