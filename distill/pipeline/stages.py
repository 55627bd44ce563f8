"""What each kind of step does. Each stage reads its config slice and its upstream folders, writes
into its own folder, and returns extra fields for its ``meta.json``."""
from __future__ import annotations

from distill.artifacts import atomic_write_json
from distill.pipeline.context import StepContext, model_ref
from distill.pipeline.context import as_dict as _as_dict
from distill.pipeline.context import world_of as _world
from distill.recipe.schema import (
    ArithmeticWorld,
    Eval,
    Generation,
    Student,
    TeacherBuild,
    Train,
)
from distill.sources import save_source


def tokenizer_stage(ctx: StepContext) -> dict:
    from distill.models import train_tokenizer
    from distill.world.arithmetic import tokenizer_corpus

    world = ArithmeticWorld.model_validate({**ArithmeticWorld().model_dump(), **ctx.step.config["world"]})
    tok = train_tokenizer(tokenizer_corpus(world))
    tok.save_pretrained(ctx.folder / "tokenizer")
    return {"vocab_size": len(tok)}


def teacher_stage(ctx: StepContext) -> dict:
    from distill.world.teacher import build_teacher

    world = _world(ctx.step.config["world"])
    build = TeacherBuild.model_validate(ctx.step.config["build"])
    return build_teacher(world, build, ctx.dep("tokenizer") / "tokenizer", ctx.folder, ctx.threads)


def student_stage(ctx: StepContext) -> dict:
    """The untrained student (the floor): initialised from config, or a pretrained model by reference."""
    student = Student.model_validate(ctx.step.config["student"])
    if student.model is not None:
        spec = student.model_dump(mode="json", exclude={"arch"})
        atomic_write_json(ctx.folder / "pointer.json", spec)
        return {"model": spec}
    from transformers import AutoTokenizer

    from distill.models import init_llama, save_pretrained

    tok = AutoTokenizer.from_pretrained(ctx.dep("tokenizer") / "tokenizer")
    model = init_llama(student.arch, tok, seed=ctx.step.config["seed"])
    save_pretrained(model, tok, ctx.folder / "model")
    return {"parameters": sum(p.numel() for p in model.parameters())}


def human_stage(ctx: StepContext) -> dict:
    from distill.sources import rows_hash
    from distill.world import build_task

    task = build_task(_world(ctx.step.config["world"]))
    rows = task.human()
    val = task.val()
    if val:  # the validation split early stopping reads (same distribution, never trained on)
        save_source(val, ctx.folder / "val")
    if "write_s" in ctx.step.config:  # the human-time ledger: each row cost a solution written from scratch
        from distill.human.stage import priced_human_rows

        rows = priced_human_rows(rows, ctx.step.config["write_s"])
    save_source(rows, ctx.folder / "source")
    return {"rows": len(rows), "val_rows": len(val), "content_hash": rows_hash(rows)}


def generate_stage(ctx: StepContext) -> dict:
    from distill.generation.pipeline import generate_shard
    from distill.world import build_task

    cfg = ctx.step.config
    gen = Generation.model_validate(cfg["generation"])
    task = build_task(_world(cfg["world"]))
    start = cfg.get("prompt_start", 0)  # generations: each one answers its own block of the prompt stream
    return generate_shard(task.prompts(start + gen.num_prompts)[start:], model_ref(ctx, cfg["teacher"]), gen,
                          ctx.folder / "shard", cfg["shard"], shards=cfg["shards"], progress=False)


def merge_stage(ctx: StepContext) -> dict:
    from distill.generation.pipeline import merge_and_filter
    from distill.recipe.schema import Filters
    from distill.world import build_task

    task = build_task(_world(ctx.step.config["world"]))
    return merge_and_filter([d / "shard" for d in ctx.deps("generate")], ctx.folder,
                            filters=Filters.model_validate(ctx.step.config["filters"]), verify=task.verify,
                            test_prompts=[r["prompt"] for r in task.test()])


def train_stage(ctx: StepContext) -> dict:
    from distill.pipeline.mixes import materialise_mix
    from distill.training import TrainJob

    cfg = ctx.step.config
    if "lineage" in cfg:  # a student of iterated self-training (recipe section `generations`)
        from distill.pipeline.axes import lineage_train_stage

        return lineage_train_stage(ctx)
    student = model_ref(ctx, {"step": ctx.dep_id("student")})
    merge = ctx.deps("merge")
    worked = {ctx.steps[d].config["primitive"]: ctx.step_folder(d) / "source"
              for d in ctx.step.deps if ctx.steps[d].kind == "expert"}
    plan, data = materialise_mix(cfg["mix"], student, ctx.dep("human") / "source",
                                 merge[0] if merge else None, ctx.folder / "mix", worked=worked)
    if not plan.feasible:
        atomic_write_json(ctx.folder / "infeasible.json", plan.to_dict())
        return {"mix": plan.to_dict(), "feasible": False}
    # only this process prepared the data; the training processes (maybe on several nodes) only train
    val = ctx.dep("human") / "val"
    result = ctx.train(TrainJob(model=student, data=str(data), out_dir=str(ctx.folder),
                                train=Train.model_validate(cfg["train"]), seed=cfg["mix"]["seed"],
                                val_data=str(val) if (val / "data").exists() else None))
    return {"mix": plan.to_dict(), "feasible": True, "train": _as_dict(result)}


def eval_stage(ctx: StepContext) -> dict:
    from evals.lmeval import eval_kwargs, evaluate_model

    cfg = ctx.step.config
    ev = Eval.model_validate(cfg["eval"])
    upstream = ctx.step_folder(ctx.step.deps[0]) if ctx.step.deps else None
    if upstream is not None and (upstream / "infeasible.json").exists():
        atomic_write_json(ctx.folder / "results.json", {"feasible": False})
        return {"feasible": False}
    spec = model_ref(ctx, cfg["model"])
    world = _world(cfg["world"])
    engine = ctx.ceiling_engine() if ctx.step.labels.get("role") == "teacher" else {}
    results = evaluate_model(spec, spec, out_dir=ctx.folder,
                             world=world.model_dump(mode="json") if isinstance(world, ArithmeticWorld) else None,
                             **eval_kwargs(ev), **engine)
    scores = {t: r["score"] for t, r in results["tasks"].items()}
    ctx.tracker.summary({f"eval/{t}": v for t, v in scores.items()})
    return {"feasible": True, "scores": scores}


def report_stage(ctx: StepContext) -> dict:
    from distill.pipeline.records import collect_records
    from distill.recipe.schema import Report
    from evals.report.sweep import write_report

    if "teachers" in ctx.step.config or "generations" in ctx.step.config:
        from distill.pipeline.axes import axis_report_stage

        return axis_report_stage(ctx)
    records = collect_records(ctx)
    atomic_write_json(ctx.folder / "records.json", records)
    out = write_report(records, ctx.folder, Report.model_validate(ctx.step.config["report"]),
                       tracker=ctx.tracker)
    return {"report": str(ctx.folder / "report.md"), "verdict": out.get("verdict")}


STAGES = {"tokenizer": tokenizer_stage, "teacher": teacher_stage, "student": student_stage,
          "human": human_stage, "generate": generate_stage, "merge": merge_stage, "train": train_stage,
          "eval": eval_stage, "report": report_stage, "expert": lambda ctx: _expert_stage(ctx)}


def _expert_stage(ctx: StepContext) -> dict:
    from distill.human.stage import expert_stage

    return expert_stage(ctx)
