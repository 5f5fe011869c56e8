#!/bin/sh
# Task experiments on the shared data with the embedded model (SmolLM2-135M-Instruct Q4_1).
# Usage: sh bench/tasks_experiments.sh [OUT_DIR]   (default /tmp/tasks_exp), then
#        .venv/bin/python bench/tasks_report.py OUT_DIR > docs/experiments/tasks.md
# --threads 1: on a shared 2-core machine two llama.cpp threads spin-wait on each other when the
# machine is oversubscribed (measured ~7x slower than one thread under load 10).
set -e
OUT=${1:-/tmp/tasks_exp}
D=../shared/data
LP=.venv/bin/logprobe
mkdir -p "$OUT"

# MMLU (cloze), 1,000 questions drawn with seed 0 from all 14,042 test questions
.venv/bin/python bench/mmlu_to_jsonl.py $D/mmlu/test "$OUT/mmlu_test.jsonl"
$LP eval mc "$OUT/mmlu_test.jsonl" --limit 1000 --seed 0 --chat-template --workers 4 --threads 1 \
    --out "$OUT/mmlu_chat_items.jsonl" --json > "$OUT/mmlu_chat.json"

# SST-2 dev (all 872), raw prompt
$LP classify --dataset $D/sst2/dev.tsv --text-col text --label-col label \
    --label-map 0=negative,1=positive --labels negative,positive \
    --template 'Review: {text}\nSentiment (positive or negative):' \
    --threads 1 --workers 2 --out "$OUT/sst2_raw.jsonl" --json > "$OUT/sst2_raw.json"

# AG News test, 500 rows drawn with seed 0, title + description
$LP classify --dataset $D/ag_news/test.csv --text-col title,description --label-col label \
    --label-map '1=World,2=Sports,3=Business,4=Science and technology' \
    --labels 'World,Sports,Business,Science and technology' \
    --template 'Article: {text}\nTopic (World, Sports, Business, or Science and technology):' \
    --limit 500 --seed 0 --threads 1 --workers 2 --out "$OUT/ag_raw.jsonl" --json > "$OUT/ag_raw.json"

# AG News again with a one-token name per class (same rows)
$LP classify --dataset $D/ag_news/test.csv --text-col title,description --label-col label \
    --label-map '1=World,2=Sports,3=Business,4=Technology' --labels 'World,Sports,Business,Technology' \
    --template 'Article: {text}\nTopic (World, Sports, Business, or Technology):' \
    --limit 500 --seed 0 --threads 1 --workers 2 --out "$OUT/ag_single.jsonl" --json > "$OUT/ag_single.json"

# cascade: SmolLM2 (cheap) -> Gemma 3 270M (strong, extra `gemma`) on 150 seeded SST-2 rows
$LP route --dataset $D/sst2/dev.tsv --text-col text --label-col label \
    --label-map 0=negative,1=positive --labels negative,positive \
    --template 'Review: {text}\nSentiment (positive or negative):' --strong gemma \
    --limit 150 --seed 0 --target-accuracy 0.85 --threads 1 --json > "$OUT/route_sst2.json"

# optional extras when time allows: SST-2 through the chat template; MMLU without it
if [ -n "$EXTRAS" ]; then
  $LP classify --dataset $D/sst2/dev.tsv --text-col text --label-col label \
      --label-map 0=negative,1=positive --labels negative,positive \
      --template 'Is the sentiment of this movie review positive or negative?\n\nReview: {text}' \
      --chat --threads 1 --workers 2 --out "$OUT/sst2_chat.jsonl" --json > "$OUT/sst2_chat.json"
  $LP eval mc "$OUT/mmlu_test.jsonl" --limit 1000 --seed 0 --workers 4 --threads 1 \
      --out "$OUT/mmlu_plain_items.jsonl" --json > "$OUT/mmlu_plain.json"
fi
