#!/bin/bash
# Fine-tune on 2 nodes x 4 GPUs with SLURM: one task per GPU; every task runs the same command and joins
# as the rank SLURM gives it (SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID).
#SBATCH --job-name=fsdp-qlora
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00

export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MASTER_PORT=29500

srun fsdp-qlora-train \
  --model_name meta-llama/Llama-2-70b-hf \
  --train_type qlora \
  --dataset alpaca \
  --batch_size 2 --context_length 2048 \
  --sharding_strategy hybrid_full_shard \
  --use_gradient_checkpointing true \
  --precision bf16 \
  --save_model true --output_dir llama70b-qlora
