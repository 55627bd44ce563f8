"""The runners of most step kinds (``pipeline/kinds.py`` names each kind's runner). Each runner reads
its config slice and its upstream folders, writes into its own folder, and returns extra fields for
its ``meta.json``."""
from __future__ import annotations

from pathlib import Path

from distill.artifacts import atomic_write_json
from distill.pipeline.configs import ModelRef
from distill.pipeline.context import StepContext, config_of, model_ref
from distill.pipeline.context import as_dict as _as_dict
from distill.recipe.schema import ArithmeticWorld, ReasoningGymWorld
from distill.sources import save_source

# worlds whose test split distill's own lm-eval tasks rebuild
_GENERATED = (ArithmeticWorld, ReasoningGymWorld)


def run_tokenizer(ctx: StepContext) -> dict:
    from distill.models import train_tokenizer

    world = ctx.config.world
    if isinstance(world, ReasoningGymWorld):
        from distill.world.reasoning_gym import TOKENIZER_VOCAB, tokenizer_corpus

        tok = train_tokenizer(tokenizer_corpus(world), vocab_size=TOKENIZER_VOCAB)
    else:
        from distill.world.arithmetic import tokenizer_corpus

        tok = train_tokenizer(tokenizer_corpus(world))
    tok.save_pretrained(ctx.folder / "tokenizer")
    return {"vocab_size": len(tok)}


def run_teacher(ctx: StepContext) -> dict:
    from distill.world.teacher import build_teacher

    cfg = ctx.config
    return build_teacher(cfg.world, cfg.build, ctx.dep("tokenizer") / "tokenizer", ctx.folder, ctx.threads)


def run_student(ctx: StepContext) -> dict:
    """The untrained student (the floor): initialised from config, or a pretrained model by reference."""
    student = ctx.config.student
    if student.model is not None:
        spec = student.model_dump(mode="json", exclude={"arch"})
        atomic_write_json(ctx.folder / "pointer.json", spec)
        return {"model": spec}
    from transformers import AutoTokenizer

    from distill.models import init_llama, save_pretrained

    tok = AutoTokenizer.from_pretrained(ctx.dep("tokenizer") / "tokenizer")
    model = init_llama(student.arch, tok, seed=ctx.config.seed)
    save_pretrained(model, tok, ctx.folder / "model")
    return {"parameters": sum(p.numel() for p in model.parameters())}


def run_human(ctx: StepContext) -> dict:
    from distill.sources import content_hash, load_source
    from distill.world import build_task

    task = build_task(ctx.config.world)
    rows = task.human()
    val = task.val()
    if val:  # the validation split early stopping reads (same distribution, never trained on)
        save_source(val, ctx.folder / "val")
    if ctx.config.write_s is not None:  # the human-time ledger: each row cost a solution written from scratch
        from distill.human.stage import priced_human_rows

        rows = priced_human_rows(rows, ctx.config.write_s)
    save_source(rows, ctx.folder / "source")
    return {"rows": len(rows), "val_rows": len(val),
            "content_hash": content_hash(load_source(ctx.folder / "source"))}


def run_generate(ctx: StepContext) -> dict:
    from distill.generation.pipeline import generate_shard
    from distill.world import build_task

    cfg = ctx.config
    gen, start = cfg.generation, cfg.prompt_start  # generations: each one answers its own block of prompts
    if gen.backend == "vllm":  # its engine spans this many devices (cost ledger)
        ctx.devices = gen.vllm.tensor_parallel_size
    task = build_task(cfg.world)
    return generate_shard(task.prompts(start + gen.num_prompts)[start:], model_ref(ctx, cfg.teacher), gen,
                          ctx.folder / "shard", cfg.shard, shards=cfg.shards, progress=False)


def run_merge(ctx: StepContext) -> dict:
    """Every stage of the merge in this process; stage tasks that already ran (``run_merge_stage``,
    as Slurm arrays) return at once, so under Slurm this is the publish task."""
    from distill.generation.pipeline import merge_and_filter
    from distill.world import build_task

    task = build_task(ctx.config.world)
    return merge_and_filter([d / "shard" for d in ctx.deps("generate")], ctx.folder,
                            filters=ctx.config.filters, verify=task.verify,
                            test_prompts=[r["prompt"] for r in task.test()], references=_references(ctx))


def run_merge_stage(ctx: StepContext, stage: str, index: int) -> None:
    """Task ``index`` of one dedup stage of the merge (``dedup_task.STAGES`` but publish). Each task
    prepares the work folder itself (the same settings every time, so safe to repeat and to run at once)
    and rebuilds the world's verifier, which a Slurm script cannot carry."""
    from distill.generation.dedup_task import run_task
    from distill.generation.pipeline import prepare_merge
    from distill.world import build_task

    task = build_task(ctx.config.world)
    work = prepare_merge([d / "shard" for d in ctx.deps("generate")], ctx.folder, ctx.config.filters, True,
                         [r["prompt"] for r in task.test()], _references(ctx))
    run_task(work, stage, index, task.verify)


def _references(ctx: StepContext) -> list[Path]:
    """The sources a merge deduplicates against without publishing them, when asked: the human pool
    and earlier generations' data (its ``merge`` dependencies, in an accumulating lineage)."""
    if not ctx.config.filters.dedup_against_human:
        return []
    return [ctx.dep("human") / "source", *(d / "synthetic" for d in ctx.deps("merge"))]


def run_train(ctx: StepContext) -> dict:
    from distill.pipeline.mixes import materialise_mix
    from distill.training import TrainJob

    cfg = ctx.config
    if cfg.mix.arm.objective != "sft":  # an SFT-then-preference arm's second step
        from distill.pipeline.preference import run_preference_train

        return run_preference_train(ctx)
    student = model_ref(ctx, ModelRef(step=ctx.dep_id("student")))
    merge = ctx.deps("merge")
    worked = {config_of(ctx.steps[d]).primitive: ctx.step_folder(d) / "source"
              for d in ctx.step.deps if ctx.steps[d].kind == "expert"}
    plan, data = materialise_mix(cfg.mix, student, ctx.dep("human") / "source",
                                 merge[0] if merge else None, ctx.folder / "mix", worked=worked,
                                 tokens=ctx.cache / "tokens")  # token tables: one per source, machine-wide
    if not plan.feasible:
        atomic_write_json(ctx.folder / "infeasible.json", plan.to_dict())
        return {"mix": plan.to_dict(), "feasible": False}
    # only this process prepared the data; the training processes (maybe on several nodes) only train
    val = ctx.dep("human") / "val"
    result = ctx.train(TrainJob(model=student, data=str(data), out_dir=str(ctx.folder),
                                train=cfg.train, seed=cfg.mix.seed,
                                teacher=model_ref(ctx, cfg.teacher) if cfg.teacher else None,
                                val_data=str(val) if (val / "data").exists() else None))
    return {"mix": plan.to_dict(), "feasible": True, "train": _as_dict(result)}


def run_eval(ctx: StepContext) -> dict:
    from evals.lmeval import eval_kwargs, evaluate_model

    cfg = ctx.config
    upstream = ctx.step_folder(ctx.step.deps[0]) if ctx.step.deps else None
    if upstream is not None and (upstream / "infeasible.json").exists():
        atomic_write_json(ctx.folder / "results.json", {"feasible": False})
        return {"feasible": False}
    spec = model_ref(ctx, cfg.model)
    world = cfg.world
    engine = ctx.ceiling_engine(cfg.vllm) if cfg.ceiling else {}
    results = evaluate_model(spec, spec, out_dir=ctx.folder,
                             world=world.model_dump(mode="json") if isinstance(world, _GENERATED) else None,
                             **eval_kwargs(cfg.eval), **engine)
    scores = {t: r["score"] for t, r in results["tasks"].items()}
    ctx.tracker.summary({f"eval/{t}": v for t, v in scores.items()})
    return {"feasible": True, "scores": scores}


def run_report(ctx: StepContext) -> dict:
    from distill.pipeline.records import collect_records
    from evals.report.sweep import write_report

    records = collect_records(ctx)
    atomic_write_json(ctx.folder / "records.json", records.dumped())
    out = write_report(records, ctx.folder, ctx.config.report,
                       tracker=ctx.tracker)
    return {"report": str(ctx.folder / "report.md"), "verdict": out.get("verdict")}

