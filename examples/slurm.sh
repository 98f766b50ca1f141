#!/bin/bash
# Fine-tune on 2 nodes x 4 GPUs with SLURM: one task per GPU; every task runs the same command and joins
# as the rank srun gives it. The command translates SLURM's variables itself (fsdp_qlora.cli.slurm_env):
# RANK/WORLD_SIZE/LOCAL_RANK from SLURM_PROCID/SLURM_STEP_NUM_TASKS/SLURM_LOCALID, LOCAL_WORLD_SIZE from the
# tasks on this node (hybrid strategies shard within a node and replicate across nodes), and the rendezvous
# on the step's first node, on a port derived from the job id (export MASTER_ADDR/MASTER_PORT, or pass
# --master_addr/--master_port, to choose them). Run outside srun, or as a one-task srun step, the command starts its
# own ranks instead. --kill-on-bad-exit ends the whole step when one task dies (SLURM's default lets the others wait
# in a collective until its timeout); SIGTERM before the time limit makes every rank checkpoint and exit 143.
#SBATCH --job-name=fsdp-qlora
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00

srun --kill-on-bad-exit=1 fsdp-qlora-train \
  --model_name meta-llama/Llama-2-70b-hf \
  --train_type qlora \
  --dataset alpaca \
  --batch_size 2 --context_length 2048 \
  --sharding_strategy hybrid_full_shard \
  --use_gradient_checkpointing true \
  --use_cpu_offload true \
  --precision bf16 \
  --save_model true --output_dir llama70b-qlora
