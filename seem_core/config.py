"""Typed model configuration.

One tree of frozen dataclasses describes a SEEM model. It is built either from an
official SEEM YAML file (upper-case keys, as in the SEEM repository and in the
golden ``config.yaml`` files) or from this project's Hydra model configs
(lower-case keys that mirror the dataclass fields). Every module constructor
takes the dataclass of its own part, so nothing below this file reads YAML.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

SUPPORTED_BACKBONES = ("focal", "focal_dw", "vit")
SUPPORTED_PIXEL_DECODERS = ("transformer_encoder_fpn", "transformer_encoder_deform")
SUPPORTED_DECODERS = ("seem_demo", "seem_v0", "seem_v1")


class ConfigError(ValueError):
    """A model configuration that cannot be built, with the reason."""


@dataclass(frozen=True)
class FocalNetConfig:
    """FocalNet backbone. ``depthwise`` (the ``focal_dw`` variant, Focal-T in SEEM) follows from
    ``SEEMConfig.backbone_name``; it is not a key of its own in either config layout."""

    depthwise: bool = True
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    focal_levels: tuple[int, ...] = (3, 3, 3, 3)
    focal_windows: tuple[int, ...] = (3, 3, 3, 3)
    mlp_ratio: float = 4.0
    patch_size: int = 4
    patch_norm: bool = True
    use_conv_embed: bool = True
    use_postln: bool = True
    use_postln_in_modulation: bool = False
    scaling_modulator: bool = True
    use_layerscale: bool = True
    out_indices: tuple[int, ...] = (0, 1, 2, 3)

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of res2..res5 (the embedding doubles at every stage)."""
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))


# The official D2ViT hard-codes its sizes per MODEL.BACKBONE.VIT.SIZE (neck widths are the
# res2..res5 channels); other sizes must give all of them as keys (golden tiny_samvit_v1 README).
VIT_SIZES: dict[str, dict[str, Any]] = {
    "base": dict(image_size=1024, embed_dim=768, depth=12, num_heads=12,
                 global_attn_indexes=(2, 5, 8, 11), neck_out_dims=(128, 256, 512, 1024)),
    "large": dict(image_size=1024, embed_dim=1024, depth=24, num_heads=16,
                  global_attn_indexes=(5, 11, 17, 23), neck_out_dims=(128, 256, 512, 1024)),
    "huge": dict(image_size=1024, embed_dim=1280, depth=32, num_heads=16,
                 global_attn_indexes=(7, 15, 23, 31), neck_out_dims=(128, 256, 512, 1024)),
}


@dataclass(frozen=True)
class ViTConfig:
    """SAM ViT image encoder with SEEM's SimpleFPN neck (``vit``; defaults: the official ``base``).

    The absolute position embedding is not resized, so inputs must be exactly
    ``image_size`` square.
    """

    image_size: int = 1024
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    neck_out_dims: tuple[int, ...] = (128, 256, 512, 1024)
    out_features: tuple[str, ...] = ("res2", "res3", "res4", "res5")


@dataclass(frozen=True)
class TextEncoderConfig:
    """Causal CLIP-style text transformer (``MODEL.TEXT``)."""

    width: int = 512
    layers: int = 12
    heads: int = 8
    context_length: int = 77
    vocab_size: int = 49408
    autoregressive: bool = True


@dataclass(frozen=True)
class PixelDecoderConfig:
    """``transformer_encoder_fpn``: a transformer encoder on res5, then an FPN to stride 4."""

    in_features: tuple[str, ...] = ("res2", "res3", "res4", "res5")
    conv_dim: int = 512
    mask_dim: int = 512
    norm: str = "GN"
    num_encoder_layers: int = 6
    nheads: int = 8
    dim_feedforward: int = 2048
    dropout: float = 0.0
    pre_norm: bool = False


@dataclass(frozen=True)
class DeformPixelDecoderConfig:
    """``transformer_encoder_deform``: multi-scale deformable attention over the coarse maps
    (``transformer_in_features``), then an FPN down to ``common_stride``."""

    in_features: tuple[str, ...] = ("res2", "res3", "res4", "res5")
    transformer_in_features: tuple[str, ...] = ("res3", "res4", "res5")
    conv_dim: int = 512
    mask_dim: int = 512
    norm: str = "GN"
    num_encoder_layers: int = 6
    nheads: int = 8
    common_stride: int = 4


@dataclass(frozen=True)
class DecoderConfig:
    """The SEEM transformer decoder (``MODEL.DECODER``). ``num_layers`` is DEC_LAYERS - 1."""

    hidden_dim: int = 512
    num_queries: int = 101
    nheads: int = 8
    dim_feedforward: int = 2048
    num_layers: int = 9
    pre_norm: bool = False
    enforce_input_proj: bool = False
    max_spatial_len: tuple[int, ...] = (512, 512, 512, 512)
    spatial_memories: int = 32
    num_feature_levels: int = 3
    # v1 interactive path: object queries copied as spatial queries per prompt (ATTENTION_ARCH.QUERY_NUMBER).
    spatial_queries: int = 3


@dataclass(frozen=True)
class SEEMConfig:
    """A whole SEEM model and the image normalisation it was trained with."""

    backbone_name: str = "focal_dw"
    pixel_decoder_name: str = "transformer_encoder_fpn"
    decoder_name: str = "seem_demo"
    dim_proj: int = 512
    backbone: FocalNetConfig | ViTConfig = field(default_factory=FocalNetConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    pixel_decoder: PixelDecoderConfig | DeformPixelDecoderConfig = field(default_factory=PixelDecoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    pixel_mean: tuple[float, ...] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, ...] = (58.395, 57.12, 57.375)
    size_divisibility: int = 32

    def __post_init__(self) -> None:
        checks = (
            (self.backbone_name, SUPPORTED_BACKBONES, "MODEL.BACKBONE.NAME"),
            (self.pixel_decoder_name, SUPPORTED_PIXEL_DECODERS, "MODEL.ENCODER.NAME"),
            (self.decoder_name, SUPPORTED_DECODERS, "MODEL.DECODER.NAME"),
        )
        for value, supported, key in checks:
            if value not in supported:
                raise ConfigError(
                    f"{key} = {value!r} is not implemented; supported: {', '.join(supported)}"
                )
        parts = ((self.backbone, BACKBONE_CONFIGS[self.backbone_name], "backbone"),
                 (self.pixel_decoder, PIXEL_DECODER_CONFIGS[self.pixel_decoder_name], "pixel_decoder"))
        for part, expected, name in parts:
            if not isinstance(part, expected):
                raise ConfigError(f"{name} is a {type(part).__name__}, but {name}_name="
                                  f"{getattr(self, name + '_name')!r} needs a {expected.__name__}")
        if isinstance(self.backbone, FocalNetConfig) and self.backbone.depthwise != (self.backbone_name == "focal_dw"):
            raise ConfigError(
                f"backbone.depthwise={self.backbone.depthwise} contradicts backbone_name={self.backbone_name!r}"
            )
        if self.max_input_side is not None and self.size_divisibility != self.max_input_side:
            raise ConfigError(
                f"size_divisibility (MODEL.DECODER.SIZE_DIVISIBILITY) = {self.size_divisibility} must equal the "
                f"ViT image size {self.max_input_side}: the SAM ViT only takes inputs padded to exactly that square")

    @property
    def max_input_side(self) -> int | None:
        """The longest resized frame side the backbone takes (the ViT's fixed input size), else None."""
        return self.backbone.image_size if isinstance(self.backbone, ViTConfig) else None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists for tuples), the inverse of :func:`from_dict`."""
        return _to_plain(dataclasses.asdict(self))


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, rejecting unknown keys."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(unknown)}")
    nested = _NESTED.get(cls, {})
    kwargs = {}
    for name, value in values.items():
        if dataclasses.is_dataclass(value):
            kwargs[name] = value
        elif name in nested:
            kwargs[name] = _build(nested[name], value or {}, f"{where}.{name}")
        elif isinstance(value, (list, tuple)):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


_NESTED: dict[type, dict[str, type]] = {
    SEEMConfig: {
        "text": TextEncoderConfig,
        "decoder": DecoderConfig,
    }
}
# The part configs each architecture name takes (``backbone_name``, ``pixel_decoder_name``).
BACKBONE_CONFIGS: dict[str, type] = {"focal": FocalNetConfig, "focal_dw": FocalNetConfig, "vit": ViTConfig}
PIXEL_DECODER_CONFIGS: dict[str, type] = {
    "transformer_encoder_fpn": PixelDecoderConfig,
    "transformer_encoder_deform": DeformPixelDecoderConfig,
}


def _part_config(table: dict[str, type], name: str, key: str) -> type:
    if name not in table:
        raise ConfigError(f"{key} = {name!r} is not implemented; supported: {', '.join(table)}")
    return table[name]


def from_dict(values: Mapping[str, Any]) -> SEEMConfig:
    """Build from this project's lower-case layout (Hydra ``configs/model``)."""
    values = dict(values)
    backbone_name = values.get("backbone_name", SEEMConfig.backbone_name)
    backbone = dict(values.get("backbone") or {})
    backbone_cls = _part_config(BACKBONE_CONFIGS, backbone_name, "model.backbone_name")
    if backbone_cls is FocalNetConfig:
        if "depthwise" in backbone:
            raise ConfigError("model.backbone.depthwise is not a setting: backbone_name (focal or focal_dw) decides it")
        backbone["depthwise"] = backbone_name == "focal_dw"
    values["backbone"] = _build(backbone_cls, backbone, "model.backbone")
    decoder_name = values.get("pixel_decoder_name", SEEMConfig.pixel_decoder_name)
    values["pixel_decoder"] = _build(
        _part_config(PIXEL_DECODER_CONFIGS, decoder_name, "model.pixel_decoder_name"),
        values.get("pixel_decoder") or {}, "model.pixel_decoder")
    return _build(SEEMConfig, values, "model")


def from_official(cfg: Mapping[str, Any]) -> SEEMConfig:
    """Map an official SEEM config (merged YAML as a dict) onto :class:`SEEMConfig`."""
    try:
        return _from_official(cfg)
    except KeyError as err:  # a required key at any depth
        raise ConfigError(f"not an official SEEM config: missing key {err}") from None


def _from_official(cfg: Mapping[str, Any]) -> SEEMConfig:
    model = cfg["MODEL"]
    backbone, text = model["BACKBONE"], model["TEXT"]
    encoder, decoder = model["ENCODER"], model["DECODER"]
    backbone_name, pixel_decoder_name = backbone["NAME"], encoder["NAME"]
    backbone_cls = _part_config(BACKBONE_CONFIGS, backbone_name, "MODEL.BACKBONE.NAME")
    _part_config(PIXEL_DECODER_CONFIGS, pixel_decoder_name, "MODEL.ENCODER.NAME")
    attn = cfg.get("ATTENTION_ARCH", {})
    inputs = cfg.get("INPUT", {})
    defaults = SEEMConfig()
    return SEEMConfig(
        backbone_name=backbone_name,
        pixel_decoder_name=pixel_decoder_name,
        decoder_name=decoder["NAME"],
        dim_proj=model["DIM_PROJ"],
        backbone=_official_vit(backbone) if backbone_cls is ViTConfig else _official_focal(backbone),
        text=TextEncoderConfig(
            width=text["WIDTH"],
            layers=text["LAYERS"],
            heads=text["HEADS"],
            context_length=text["CONTEXT_LENGTH"],
            autoregressive=text.get("AUTOGRESSIVE", True),
        ),
        pixel_decoder=_official_pixel_decoder(encoder, decoder),
        decoder=DecoderConfig(
            hidden_dim=decoder["HIDDEN_DIM"],
            num_queries=decoder["NUM_OBJECT_QUERIES"],
            nheads=decoder["NHEADS"],
            dim_feedforward=decoder["DIM_FEEDFORWARD"],
            num_layers=decoder["DEC_LAYERS"] - 1,
            pre_norm=decoder["PRE_NORM"],
            enforce_input_proj=decoder["ENFORCE_INPUT_PROJ"],
            max_spatial_len=tuple(decoder["MAX_SPATIAL_LEN"]),
            spatial_memories=attn.get("SPATIAL_MEMORIES", defaults.decoder.spatial_memories),
            spatial_queries=attn.get("QUERY_NUMBER", defaults.decoder.spatial_queries),
        ),
        pixel_mean=tuple(inputs.get("PIXEL_MEAN", defaults.pixel_mean)),
        pixel_std=tuple(inputs.get("PIXEL_STD", defaults.pixel_std)),
        size_divisibility=decoder.get("SIZE_DIVISIBILITY", defaults.size_divisibility),
    )


def _official_focal(backbone: Mapping[str, Any]) -> FocalNetConfig:
    focal = backbone["FOCAL"]
    return FocalNetConfig(
        depthwise=backbone["NAME"] == "focal_dw",
        embed_dim=focal["EMBED_DIM"],
        depths=tuple(focal["DEPTHS"]),
        focal_levels=tuple(focal["FOCAL_LEVELS"]),
        focal_windows=tuple(focal["FOCAL_WINDOWS"]),
        mlp_ratio=focal["MLP_RATIO"],
        patch_size=focal["PATCH_SIZE"],
        patch_norm=focal["PATCH_NORM"],
        use_conv_embed=focal["USE_CONV_EMBED"],
        use_postln=focal["USE_POSTLN"],
        use_postln_in_modulation=focal["USE_POSTLN_IN_MODULATION"],
        scaling_modulator=focal.get("SCALING_MODULATOR", False),
        use_layerscale=focal["USE_LAYERSCALE"],
        out_indices=tuple(focal["OUT_INDICES"]),
    )


def _official_vit(backbone: Mapping[str, Any]) -> ViTConfig:
    """Sizes from the official table for ``VIT.SIZE`` base/large/huge, else from the six size keys.

    A size key next to a table size must agree with the table (the official code would ignore it).
    """
    vit = backbone["VIT"]
    size = vit["SIZE"]
    table = VIT_SIZES.get(size)
    values = {}
    for name in VIT_SIZES["base"]:
        key = f"MODEL.BACKBONE.VIT.{name.upper()}"
        given = vit.get(name.upper())
        if table is None and given is None:
            raise ConfigError(f"MODEL.BACKBONE.VIT.SIZE = {size!r} is not one of {', '.join(VIT_SIZES)}, "
                              f"so the size keys are needed: missing key {key}")
        value = tuple(given) if isinstance(given, (list, tuple)) else given
        if table is not None and value is not None and value != table[name]:
            raise ConfigError(f"{key} = {given!r} contradicts MODEL.BACKBONE.VIT.SIZE = {size!r} "
                              f"(which means {table[name]!r})")
        values[name] = table[name] if value is None else value
    return ViTConfig(**values, out_features=tuple(vit["OUT_FEATURES"]))


def _official_pixel_decoder(encoder: Mapping[str, Any],
                            decoder: Mapping[str, Any]) -> PixelDecoderConfig | DeformPixelDecoderConfig:
    """Both pixel decoders take their heads from the decoder section, as officially."""
    common = dict(
        in_features=tuple(encoder["IN_FEATURES"]),
        conv_dim=encoder["CONVS_DIM"],
        mask_dim=encoder["MASK_DIM"],
        norm=encoder["NORM"],
        num_encoder_layers=encoder["TRANSFORMER_ENC_LAYERS"],
        nheads=decoder["NHEADS"],
    )
    if encoder["NAME"] == "transformer_encoder_deform":
        # The official from_config hard-codes this encoder's FFN width; DIM_FEEDFORWARD does not reach it.
        return DeformPixelDecoderConfig(
            **common,
            transformer_in_features=tuple(encoder["DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES"]),
            common_stride=encoder["COMMON_STRIDE"],
        )
    return PixelDecoderConfig(
        **common,
        dim_feedforward=decoder["DIM_FEEDFORWARD"],
        dropout=decoder["DROPOUT"],
        pre_norm=decoder["PRE_NORM"],
    )


def load_config(source: str | Path | Mapping[str, Any] | SEEMConfig) -> SEEMConfig:
    """Accept a SEEMConfig, or a YAML path or dict in either layout (official, or our ``architecture``)."""
    if isinstance(source, SEEMConfig):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"{path}: model config file not found")
        try:
            with path.open() as fh:
                data = yaml.safe_load(fh)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        try:
            return load_config(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    if "MODEL" in source:
        return from_official(source)
    return from_dict(source)
