"""Label maps of real heads, derived from the permissively licensed scans in ../shared/anatomy.

Each training head is a real T1-weighted MR volume with skull and scalp. Its label map (TISSUE_LABELS) comes
from the scan itself plus the Colin27 template:
  1. N4 bias-field correction; head mask by Otsu threshold, largest component, holes filled per slice.
  2. Brain mask: the Colin27 whole-head T1 registered to the head (affine, then B-spline, Mattes mutual
     information), carrying Colin27's brain mask; the ICBM152 2009a grey/white probability maps ride along
     as priors for the tissue classes.
  3. Brain tissues by intensity within the brain mask (three-class k-means on the corrected T1 with the
     registered priors breaking ties): CSF, grey matter, white matter; CSF far from the brain surface is
     ventricle; grey matter far from the surface is deep grey matter.
  4. Outside the brain: T1-dark voxels in the shell next to the brain are cortical bone (its bright marrow,
     enclosed between the dark tables, is cancellous bone); T1-dark voxels further out are air (nasal
     cavity, pharynx, ear canals) and dark blobs inside the bony shell below the brain's equator are sinus
     air; T1-bright voxels are fat; the rest is skin and muscle.
Because the labels come from the same scan, the real T1 and any CT synthesised from the labels are aligned
voxel for voxel (training/synth.py).

The Visible Human Female head (a real CT in HU plus the same cadaver's MR) is held out of training: it is
the paired real-scan check of training/realscan.py.

Usage: .venv/bin/python -m training.anatomy [--shared ../shared/anatomy] [--out training/heads]
Writes <out>/<head>-t1.nii.gz (uint8, N4-corrected, 0.5-99.5 percentile window) and <out>/<head>-labels.nii.gz
(uint8), axial (LPS), 1 mm in-plane, plus <out>/heads.json (sources, spacing, label counts)."""
import argparse
import json
import os

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SHARED = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'anatomy')
DEFAULT_OUT = os.path.join(REPO_ROOT, 'training', 'heads')

TISSUE_LABELS = {
    'background': 0, 'skin_muscle': 1, 'fat': 2, 'cortical_bone': 3, 'cancellous_bone': 4, 'air_internal': 5,
    'csf': 6, 'ventricle': 7, 'grey_matter': 8, 'white_matter': 9, 'deep_grey': 10,
}
L = TISSUE_LABELS

# name: (file under shared/anatomy, source, licence); all real T1-weighted heads with skull and scalp.
HEADS = {
    'seg3d': ('seg3d-epilepsy/mr-t1.nii.gz', 'Seg3DData via neurolabusc/VolumeRenderingData @ d15be4d1, seg3D/MR.nii.gz',
              'MIT (c) 2015 SCI Institute'),
    'colin27': ('colin27/single-subject-t1-whole-head-2mm.nii.gz',
                'Colin27 (SPM single_subj_T1) via ryancinsight/ritk @ b35c9331', 'MNI permission notice'),
    'rire001': ('rire-001/mr-t1.mha', 'RIRE training 001 T1 via ryancinsight/ritk @ b35c9331', 'CC BY 3.0 US'),
    'vhm': ('visible-human-male/mr-head.mha', 'Visible Human Male MR via ryancinsight/ritk @ b35c9331',
            'public domain (U.S. National Library of Medicine)'),
}
COLIN_HEAD = 'colin27/single-subject-t1-whole-head-2mm.nii.gz'
COLIN_BRAIN = 'colin27/colin27-t1-brain.nii.gz'
ICBM_GM = 'icbm152-2009a/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz'
ICBM_WM = 'icbm152-2009a/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz'
IN_PLANE_MM = 1.0
SKULL_SHELL_MM = 13.0   # inner table to outer table plus a margin: adult skull is 4-10 mm thick
VENTRICLE_DEPTH_MM = 14.0
DEEP_GREY_DEPTH_MM = 22.0
BRAIN_SLACK_MM = 12.0  # how far the brain may reach past the registered template's mask
SLAB_MM = 12.0
MIN_SLAB_VOXELS = 3000
CSF_RIM_MM = 3.0      # subarachnoid CSF between cortex and inner table
SKIN_MM = 4.0          # the head's dark partial-volume edge is skin, not air


def read_axial(path: str) -> sitk.Image:
    """Any orientation -> LPS (array [z, y, x]: superior slices last, anterior rows first), float32."""
    return sitk.Cast(sitk.DICOMOrient(sitk.ReadImage(path), 'LPS'), sitk.sitkFloat32)


def resample_in_plane(image: sitk.Image, mm: float = IN_PLANE_MM) -> sitk.Image:
    """In-plane spacing -> mm; slice spacing kept (thick-slice heads stay thick: slices are the training unit)."""
    sx, sy, sz = image.GetSpacing()
    size = [int(round(image.GetSize()[0] * sx / mm)), int(round(image.GetSize()[1] * sy / mm))]
    if sz < mm:  # near-isotropic volumes: 1 mm through-plane too
        sz = mm
    size.append(int(round(image.GetSize()[2] * image.GetSpacing()[2] / sz)))
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkBSpline, image.GetOrigin(), (mm, mm, sz),
                         image.GetDirection(), 0.0, sitk.sitkFloat32)


def n4(image: sitk.Image, mask: sitk.Image) -> sitk.Image:
    """N4 bias correction estimated at 1/2-1/4 resolution, applied at full resolution."""
    shrink = 4 if min(image.GetSize()) > 100 else 2
    small = sitk.Shrink(image, [shrink, shrink, 1 if image.GetSpacing()[2] > 2 else shrink])
    small_mask = sitk.Shrink(mask, [shrink, shrink, 1 if image.GetSpacing()[2] > 2 else shrink])
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([50, 40, 30])
    corrector.Execute(small + 1.0, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(image)
    return sitk.Cast(image / sitk.Exp(log_field), sitk.sitkFloat32)


def head_mask(t1: np.ndarray) -> np.ndarray:
    """Half the Otsu level (keeps the dark scalp edge), closed, largest component, holes filled per slice."""
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.Execute(sitk.GetImageFromArray(t1[t1 > 0].astype(np.float32)[None, None]))
    mask = t1 > 0.5 * otsu.GetThreshold()
    mask = ndimage.binary_closing(mask, structure=np.ones((1, 5, 5)), iterations=2)
    components, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum(mask, components, range(1, count + 1))
        mask = components == 1 + int(np.argmax(sizes))
    return np.stack([ndimage.binary_fill_holes(s) for s in mask])


def register_template(fixed: sitk.Image, fixed_mask: sitk.Image, moving: sitk.Image) -> sitk.Transform:
    """Moving (template) -> fixed (head): moments-centred affine, then a B-spline, both Mattes MI."""
    init = sitk.CenteredTransformInitializer(fixed_mask, sitk.Cast(moving > 0.05 * float(
        sitk.GetArrayViewFromImage(moving).max()), sitk.sitkFloat32), sitk.AffineTransform(3),
        sitk.CenteredTransformInitializerFilter.MOMENTS)

    def method(transform, iterations):
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(32)
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(0.1, seed=7)
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsGradientDescent(learningRate=1.0, numberOfIterations=iterations,
                                          convergenceMinimumValue=1e-6, convergenceWindowSize=10)
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetShrinkFactorsPerLevel([4, 2, 1])
        reg.SetSmoothingSigmasPerLevel([2, 1, 0])
        reg.SetInitialTransform(transform, inPlace=False)
        return reg.Execute(fixed, moving)

    affine = method(init, 100)
    mesh = [max(2, int(s * sp / 40)) for s, sp in zip(fixed.GetSize(), fixed.GetSpacing())]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.1, seed=7)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=40)
    # Coarse levels only: the template's brain outline is all that is carried, and full resolution costs
    # minutes per head on two cores for no visible gain.
    reg.SetShrinkFactorsPerLevel([4, 2])
    reg.SetSmoothingSigmasPerLevel([2, 1])
    reg.SetMovingInitialTransform(affine)
    reg.SetInitialTransform(bspline, inPlace=True)
    reg.Execute(fixed, moving)
    return sitk.CompositeTransform([affine, bspline])


def warp(template: sitk.Image, reference: sitk.Image, transform: sitk.Transform) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.Resample(template, reference, transform, sitk.sitkLinear, 0.0,
                                                sitk.sitkFloat32))


def kmeans_1d(values: np.ndarray, centres: np.ndarray, iterations: int = 30) -> np.ndarray:
    for _ in range(iterations):
        assign = np.argmin(np.abs(values[:, None] - centres[None]), axis=1)
        centres = np.array([values[assign == k].mean() if np.any(assign == k) else centres[k]
                            for k in range(len(centres))])
    return np.sort(centres)


def slab_centres(t1: np.ndarray, core: np.ndarray, slice_mm: float) -> tuple:
    """CSF, grey and white matter intensity centres per slice, each from the brain core within
    +-SLAB_MM: N4 leaves some slow drift (coil fall-off towards the vertex), which one global set of centres
    turns into whole slabs of misclassified tissue. Returned as (Z, 1, 1) arrays that broadcast over slices."""
    values = t1[core].astype(np.float64)
    overall = kmeans_1d(values, np.percentile(values, [10, 50, 90]))
    reach = max(1, int(round(SLAB_MM / slice_mm)))
    centres = np.empty((t1.shape[0], 3))
    for z in range(t1.shape[0]):
        slab = t1[max(0, z - reach):z + reach + 1][core[max(0, z - reach):z + reach + 1]].astype(np.float64)
        centres[z] = kmeans_1d(slab, overall.copy(), iterations=15) if slab.size >= MIN_SLAB_VOXELS else overall
    return tuple(centres[:, k, None, None] for k in range(3))


def depth_mm(mask: np.ndarray, spacing_zyx: tuple) -> np.ndarray:
    return ndimage.distance_transform_edt(mask, sampling=spacing_zyx)


def refine_brain(t1: np.ndarray, region: np.ndarray, csf_c: float, gm_c: float) -> np.ndarray:
    """The brain inside the registered template's (dilated) mask, from the scan itself: tissue brighter than
    half-way from CSF to grey matter, eroded to cut bridges to the scalp, largest component, grown back, then
    closed and filled so that sulci and ventricles are inside."""
    tissue = region & (t1 > csf_c + 0.5 * (gm_c - csf_c))
    core = ndimage.binary_erosion(tissue, iterations=2)
    components, count = ndimage.label(core)
    if count > 1:
        core = components == 1 + int(np.argmax(ndimage.sum(core, components, range(1, count + 1))))
    brain = ndimage.binary_dilation(core, iterations=2) & tissue
    brain = ndimage.binary_closing(brain, structure=np.ones((3, 3, 3)), iterations=3) & region
    return np.stack([ndimage.binary_fill_holes(s) for s in brain])


def label_head(t1: np.ndarray, head: np.ndarray, brain_prob: np.ndarray, gm_prior: np.ndarray,
               wm_prior: np.ndarray, spacing_zyx: tuple) -> np.ndarray:
    """The label map of one head (see the module docstring)."""
    template = (brain_prob > 0.5) & head
    region = (ndimage.distance_transform_edt(~template, sampling=spacing_zyx) <= BRAIN_SLACK_MM) & head
    # Class centres from the template's core only: the slack region reaches into skull and scalp fat.
    core = ndimage.binary_erosion(template, iterations=2)
    csf_c, gm_c, wm_c = slab_centres(t1, core, spacing_zyx[0])
    brain = refine_brain(t1, region, csf_c, gm_c)
    labels = np.where(head, L['skin_muscle'], L['background']).astype(np.uint8)

    prior_wm = wm_prior / max(1e-6, float(wm_prior.max()))
    prior_gm = gm_prior / max(1e-6, float(gm_prior.max()))
    # Distances to the three class centres, nudged by the registered priors (they break ties at boundaries).
    scale = (wm_c - csf_c) / 2
    cost = np.stack([np.abs(t1 - csf_c) / scale + 0.5 * (prior_gm + prior_wm),
                     np.abs(t1 - gm_c) / scale + 0.5 * (1 - prior_gm),
                     np.abs(t1 - wm_c) / scale + 0.5 * (1 - prior_wm)])
    tissue = np.argmin(cost, axis=0)
    depth = depth_mm(brain, spacing_zyx)
    labels[brain & (tissue == 0)] = L['csf']
    labels[brain & (tissue == 0) & (depth > VENTRICLE_DEPTH_MM)] = L['ventricle']
    labels[brain & (tissue == 1)] = L['grey_matter']
    labels[brain & (tissue == 1) & (depth > DEEP_GREY_DEPTH_MM)] = L['deep_grey']
    labels[brain & (tissue == 2)] = L['white_matter']

    outside = head & ~brain
    dark = t1 < csf_c + 0.35 * (gm_c - csf_c)
    bright = t1 > wm_c * 1.05
    from_brain = ndimage.distance_transform_edt(~brain, sampling=spacing_zyx)
    shell = outside & (from_brain <= SKULL_SHELL_MM)
    # A thin dark rim right at the brain mask is CSF (sulcal and subarachnoid), not bone.
    rim = outside & dark & (from_brain <= CSF_RIM_MM)
    bone = shell & dark & ~rim
    # Marrow between the inner and outer tables: bright or medium voxels enclosed by closing the dark tables.
    closed = ndimage.binary_closing(bone, structure=np.ones((1, 3, 3)), iterations=3)
    cancellous = closed & shell & ~bone & ~rim
    # Below the brain's equator large dark blobs in the shell are air cells and sinuses, not bone.
    z_brain = np.nonzero(brain.any(axis=(1, 2)))[0]
    equator = int(z_brain[0] + 0.35 * (z_brain[-1] - z_brain[0])) if z_brain.size else 0
    sinus = np.zeros_like(bone)
    if equator > 0:
        low = bone[:equator] & (t1[:equator] < csf_c[:equator])
        low = ndimage.binary_opening(low, structure=np.ones((1, 5, 5)))
        sinus[:equator] = low
    labels[outside & bright] = L['fat']
    labels[rim] = L['csf']
    labels[cancellous] = L['cancellous_bone']
    labels[bone] = L['cortical_bone']
    labels[sinus] = L['air_internal']
    # Dark voxels beyond the shell are air (nasal cavity, pharynx, ear canals) only away from the skin: the
    # head's own edge is dark by partial volume.
    inside_skin = ndimage.distance_transform_edt(head, sampling=spacing_zyx) > SKIN_MM
    labels[outside & ~shell & dark & inside_skin] = L['air_internal']
    return labels


def to_uint8(t1: np.ndarray, head: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(t1[head], [0.5, 99.5])
    return np.clip(np.round((t1 - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)


def derive_head(name: str, shared: str, colin: sitk.Image, colin_brain: sitk.Image, gm: sitk.Image,
                wm: sitk.Image) -> tuple:
    image = resample_in_plane(read_axial(os.path.join(shared, HEADS[name][0])))
    t1 = sitk.GetArrayFromImage(image)
    t1 = np.maximum(t1, 0)
    head = head_mask(t1)
    mask_image = sitk.GetImageFromArray(head.astype(np.uint8))
    mask_image.CopyInformation(image)
    corrected = n4(image, mask_image)
    fixed = sitk.Mask(corrected, mask_image)
    transform = register_template(fixed, sitk.Cast(mask_image, sitk.sitkFloat32), colin)
    brain_prob = warp(colin_brain, image, transform)
    gm_prior, wm_prior = warp(gm, image, transform), warp(wm, image, transform)
    t1c = sitk.GetArrayFromImage(corrected) * head
    spacing_zyx = tuple(reversed(image.GetSpacing()))
    labels = label_head(t1c, head, brain_prob, gm_prior, wm_prior, spacing_zyx)
    return to_uint8(t1c, head), labels, image


def write(array: np.ndarray, like: sitk.Image, path: str) -> None:
    out = sitk.GetImageFromArray(array)
    out.CopyInformation(like)
    sitk.WriteImage(out, path, useCompression=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--shared', default=DEFAULT_SHARED)
    p.add_argument('--out', default=DEFAULT_OUT)
    p.add_argument('--heads', default=','.join(HEADS))
    args = p.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(2)
    os.makedirs(args.out, exist_ok=True)
    colin = read_axial(os.path.join(args.shared, COLIN_HEAD))
    colin_brain = sitk.Cast(read_axial(os.path.join(args.shared, COLIN_BRAIN)) > 0, sitk.sitkFloat32)
    gm = read_axial(os.path.join(args.shared, ICBM_GM)) / 255.0
    wm = read_axial(os.path.join(args.shared, ICBM_WM)) / 255.0
    index_path = os.path.join(args.out, 'heads.json')
    index = json.load(open(index_path)) if os.path.exists(index_path) else {'labels': TISSUE_LABELS, 'heads': {}}
    for name in args.heads.split(','):
        t1, labels, like = derive_head(name, args.shared, colin, colin_brain, gm, wm)
        write(t1, like, os.path.join(args.out, f'{name}-t1.nii.gz'))
        write(labels, like, os.path.join(args.out, f'{name}-labels.nii.gz'))
        counts = {k: int((labels == v).sum()) for k, v in TISSUE_LABELS.items()}
        index['heads'][name] = {'source': HEADS[name][1], 'licence': HEADS[name][2], 'file': HEADS[name][0],
                                'shape_zyx': list(labels.shape), 'spacing_xyz_mm': list(like.GetSpacing()),
                                'voxels': counts}
        print(json.dumps({'head': name, 'shape': labels.shape, 'spacing': like.GetSpacing()}))
    index['labels'] = TISSUE_LABELS
    with open(index_path, 'w') as f:
        json.dump(index, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
