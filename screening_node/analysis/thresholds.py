"""Every number the analytic engine decides with, in one place, each with its reason.

Units: HU for densities, mm for lengths, fractions (0..1) for height loss.
"""

from __future__ import annotations

# --- Genant semi-quantitative grading (Genant 1993; ARCHITECTURE "The science") ---
GENANT_MILD = 0.20      # r >= 20 % height loss: grade 1 (mild)
GENANT_MODERATE = 0.25  # r >= 25 %: grade 2 (moderate)
GENANT_SEVERE = 0.40    # r > 40 %: grade 3 (severe); 40 % itself is still moderate ("25-40 %")
SUSPECT_MIN_GRADE = 2   # a study is "fracture suspected" from this worst grade on (settings: analysis.suspect_min_grade).
                        # Grade 2 is the screening's fracture line, as in the evaluation (Zakharov et al.: grade >= 2
                        # positive): a mild (grade 1, 20-25 %) deformity is often no fracture, and on 3 mm slices
                        # one slice of endplate error is 5-10 % of height loss. Eight batches of 3 mm phantoms: of
                        # 52 patients with no fracture, 12 had a grade >= 1 somewhere, 3 a grade >= 2; of 133 with a
                        # grade >= 2 fracture, 131 were read >= 1 and 121 >= 2 (tcia, read normal by eye: T8 grade 1)
# A crush fracture lowers all three heights; it shows only against the neighbours' posterior heights.
CRUSH_MIN_NEIGHBOURS = 1  # at least one assessable neighbour is needed to judge crush
COLLAPSE_MIN_REFERENCES = 2  # a body whose shape was not traced is graded from its tallest height only against the
                             # median of this many neighbours' posterior heights, measured on both sides of it (one
                             # could itself be misread; a fragment of a cut body at the end of the run has none
                             # above) ...
COLLAPSE_MIN_LOSS = 0.25     # ... and only where that height lies this far below them (a moderate collapse or worse:
                             # a milder one could be a normal body read at a misplaced endplate)
MIDDLE_MAX_EXCESS = 0.2  # endplates are flat or concave, and a fracture lowers the middle first: a middle height more
                         # than 20 % above both wall heights is a middle endplate not traced (3 mm phantoms: 5 of 6
                         # such bodies graded >= 2 had truth grade 0), not a shape to grade
ENDPLATE_MAX_BULGE_MM = 2.5  # an endplate is flat or concave: its middle keypoint standing this far out towards the disc
                             # beyond the line through its corners is a misread corner or middle. 3 mm slices place each
                             # point within +-0.87 mm (uncertainty.py), the bulge mixes three (~1.1 mm): this is beyond
                             # two of that from flat. Phantom truth -0.2 to -0.5 mm, the real scans' readings <= 0.4; on
                             # seven batches of 3 mm phantoms every body read beyond it (10 with a truth) had a height
                             # 3.4-12 mm off
ANTERIOR_MAX_EXCESS = 0.3  # only L5 is taller in front than at the back (by ~10 %; phantom truth <= 9 %, a strongly
                           # lordotic real L5 ~20 %): an anterior height 30 % above the posterior is an endplate at the
                           # back not traced (3 mm phantoms: 11 of 13 such bodies graded >= 2 had truth grade 0)
L5_NORMAL_POSTERIOR_SHARE = 0.87  # a normal L5 is shorter behind than in front: CT morphometry of adult L5s, anterior
                                  # 30.3 +- 1.9 mm, posterior 26.3 +- 1.9 (International Journal of Spine Surgery,
                                  # lumbar CT morphometry, table 6: 0.87). With r = 1 - min/max a normal L5 read as a
                                  # posterior "crush" of 13 % on average, 20 % (grade 1) in about one in five (tcia
                                  # 30.1 / 23.3 mm: 23 %, grade 1); its posterior counts as low only beyond this share
MERGED_BODY_RATIO = 1.75  # a body this many times its neighbours' (median) posterior height is two bodies taken for
                          # one (neighbouring heights differ by < 15 %; 3 mm phantoms: every body above 1.75 was two)
MERGED_MIN_REFERENCES = 2  # ... judged against at least two measured neighbours: one alone may be a crushed body
CRUSH_REFERENCE_PER_SIDE = 2  # the crush reference is the median posterior height of up to this many measured
                              # bodies on each side (the nearest within this many places): heights change
                              # by ~1 mm a level, and one mis-measured or fractured neighbour is outvoted

# --- Working resolution ---
COARSE_MM = 3.0         # spine search grid: a vertebral body (>= 25 mm) spans 8+ voxels
STRAIGHT_MM = 1.0       # straightened volume pixel size (issue: 1 mm)
ANALYSIS_PIXEL_MM = 1.0  # a DICOM series' pixels are averaged in blocks up to this as it is read for analysis
                         # (imaging.volume.in_plane_blocks): the spine is read on 1 mm planes, and a 1024 x 1024
                         # series held at its 0.4 mm pixels took 2.7 GB for 327 slices
STRAIGHT_HALF_AP_MM = 60   # half extent along the column direction: body (~35 mm) + canal + arch
STRAIGHT_HALF_LAT_MM = 40  # half extent left-right: a lumbar body is ~50 mm wide
LABEL_STEP_MM = 2.0        # sample spacing of the wide labelling volume: ribs and ilia are >= 5 mm thick
LABEL_HALF_LAT_MM = 110     # lateral reach for rib / pelvis evidence

# --- Densities (HU) ---
BODY_SEGMENT_HU = 130.0  # mid-sagittal AP profile above this belongs to bone (body or arch)
BODY_SEGMENT_LOW_HU = 70.0  # ... or, failing that, osteoporotic marrow (50-120 HU) above muscle, canal and fat
MARROW_MIN_HU = -50.0   # the fattiest osteoporotic marrow stays above fat (~-100 HU); lung and air are far lower
SOFT_TISSUE_HU = 30.0   # muscle, canal contents, disc rim: what surrounds a body
EDGE_MIN_HU = 70.0      # body edges are never placed below this level (fat / fluid are lower)
OUTSIDE_FOV_HU = -1000.0  # straightened samples outside the scanned volume read -1024
AIR_HU = -500.0         # outside the patient / lungs
CORTEX_LOW_HU = 250.0   # the spine search counts cortical bone only: a contrast-filled aorta (portal venous
CORTEX_HIGH_HU = 550.0  # ~150-250 HU) adds nothing, osteoporotic marrow (~80 HU) neither; cortex is 400-1000 HU

# --- Contrast-filled blood (vessels.py) ---
VESSEL_GRID_MM = 2.0        # blood is looked for on the CT binned to at least this (noise averaged; a pool is >= 8 mm)
VESSEL_MIN_RADIUS_MM = 4.0  # a pool holds a ball this thick at the cortical level: the aorta (radius 8-15 mm), the
                            # heart's chambers, a pulmonary trunk; cortex, laminae, ribs and processes are thinner
VESSEL_MIN_EXTENT_MM = 60.0  # ... and is longer than this along some axis: no vertebral body is (a lumbar body is
                             # <= ~55 mm wide, 25-35 mm tall); a dense body's marrow ends at its discs
VESSEL_MAX_SPREAD_HU = 45.0  # ... and uniform: robust standard deviation of its binned values at most this. Blood
                             # varies with the noise alone: 14-22 HU on tcia's aorta and heart, 12-34 HU on the
                             # aortas and vena cavas of 30 phantoms at 450 HU; bone regions as long and thick spread
                             # 53 HU or more on phantoms (flat marrow and cortex), 130 or more on the real scans
VESSEL_MAX_BANDS = 3        # a region that is not uniform is looked at again a band of its values at a time (the
                            # aorta, the heart and bone it touches: three)
VESSEL_CAP_SPREADS = 4.0    # only values up to a pool's median + this many VESSEL_MAX_SPREAD_HU are replaced
BLOOD_UNENHANCED_HU = 40.0  # blood without contrast: what a set-aside pool reads as

# --- Spine search ---
SPINE_SMOOTH_MM = 9.0   # in-plane smoothing of the bone indicator: favours the thick column over
                        # thin ribs / sternum and a contrast-filled aorta (25 mm, no arch around it)
SPINE_AXIAL_SMOOTH_MM = 15.0  # along z: the column is continuous across discs
SPINE_MAX_STEP_MM = 3.0  # the column centre moves at most one coarse voxel per 3 mm slice (45 deg; scoliosis
                        # <= 20 deg and lordosis stay well below; a jump to the hips would need more)
SPINE_PATH_SMOOTH_MM = 25.0  # curve smoothing: shorter than a vertebra would follow the arches
SPINE_TIGHT_CROP_MM = 160.0  # a slice whose body outline is narrower than this is a crop around the spine: its
                             # outline's middle says nothing of where the column is
SPINE_MIRROR_MAX_OFF_MM = 12.0  # on a tight crop a path this far (median) from the plane the bone is mirror-
                                # symmetric about runs in a facet column (15-25 mm to the side), not in the
                                # column's middle (body, canal, arch); within it the body-centre stage finds the body
SPINE_MIRROR_SIGMA_MM = 6.0   # ... and it is then found again with the score weighted towards that plane (the dense
                              # facet columns, 15-25 mm to each side, then weigh less than the body)
SPINE_MIRROR_SMOOTH_MM = 30.0  # that plane is judged per slice and smoothed (median) over about a vertebra
SPINE_MAX_OFF_MIDLINE_MM = 55.0  # the column stays this close to the body's left-right middle (a 20 deg scoliosis
                                 # apex moves it ~30 mm); the hips lie ~90 mm out
SPINE_MAX_LATERAL_SLOPE = 0.7  # the column inclines at most ~35 deg to the side over half a vertebra (a 20 deg
                                # scoliosis tilts a segment ~10-20 deg); the path along the pelvic ring from a
                                # sacro-iliac joint to a hip runs sideways at the steepest step (45 deg)
SPINE_SIDEWAYS_RUN_MM = 15.0  # ... judged over this length: half a lumbar vertebra, longer than one body's wobble
SACRUM_CONTINUE_MM = 30.0  # where the path left sideways (at the sacro-iliac joints, S1-S2) the curve goes on
                           # straight this far: the rest of S1 (a ~30 mm body, its centre at the joints' level)
MIN_SPINE_LENGTH_MM = 40.0   # shorter than ~1.5 vertebrae: no measurement possible

# --- Vertebral bodies along the straightened axis ---
BODY_BEHIND_PATH_MM = 35.0  # the body's posterior wall lies at most this far in front of the coarse path (which
                            # runs through body, canal or arch); a contrast aorta ends >= 30 mm in front
MIRROR_AXIS_REACH_MM = 20.0  # the profiles' mid-sagittal slab follows the plane each cross-section is mirror-symmetric
                            # about, looked for this far to each side of the curve ...
MIRROR_AXIS_SPAN_MM = 20.0  # ... comparing this far to each side of it (body, pedicles): the straightened volume's half
                            # width less the reach, so that every shift compares a whole span ...
MIRROR_AXIS_CLIP_HU = 600.0  # ... in HU clipped to 0..this (shape, not the densest cortex; uncentred: mean-subtracted,
                            # as mirror.masked_ncc compares, it moved verse19-007's results) ...
MIRROR_AXIS_SMOOTH_MM = 31.0  # ... median-smoothed over about a vertebra (a disc's row shows little to compare);
MIRROR_AXIS_OFF_MM = 2.0    # ... where the curve runs this far (median) from those planes (two samples; nearer, they are
                            # the curve's own): a path down one side of the arch (a 3 mm osteoporotic chest phantom:
                            # 4 mm, the curve 3-12 mm beside its bodies); real scans whose rings rarely close:
                            # ts-example 8 mm, verse19-007 7 mm, verse19-006 1 mm
BODY_RING_MIN_RADIUS_MM = 7.0  # a body's inscribed circle (>= 14 mm): laminae, processes, ribs are thinner
BODY_LOBE_SHARE = 0.6       # the filled canal ring (radius ~14 mm) can be deeper than a thoracic body (~12 mm);
                            # the front lobe at least this fraction as deep as the deepest is the body
BODY_RING_MAX_LAT_MM = 20   # the curve runs through the vertebra's midline (body, canal or arch), so the body
                            # centre is within this laterally (a 30 deg rotated body moves ~12 mm)
BODY_RING_BEHIND_MM = 25   # the body centre lies at most this far behind the coarse path (a path through the
                            # body's front half); the canal lobe behind it stays in view for comparison
BODY_AHEAD_GAP_MM = 5       # bone more than this in front of a lobe's inscribed circle is not its own wall ...
BODY_AHEAD_HALF_WIDTH_MM = 3  # ... looked for on a 7 mm wide strip along the lobe's midline ...
BODY_AHEAD_WALL_SHARE = 0.7   # ... as a row of the strip that is mostly cortex (a wall crossing it)
BODY_RING_LOW_HU = 150.0    # a thin osteoporotic cortex blurred by 3 mm slices reads 150-250 HU: the body's ring opens
                            # at CORTEX_LOW_HU while the denser pedicles and laminae still close the canal's, which
                            # then passes for the body. At this level the body's ring closes (muscle, disc, fat and
                            # osteoporotic marrow stay below it: a ring, darker inside than at its rim), while a
                            # contrast-filled vessel is solid (no brighter at its rim): it is looked at only to find
                            # the body in front of a dark lobe (the canal) ...
CANAL_MAX_HU = 60.0         # ... whose middle is this dark (cord and fluid 0-40 HU; marrow >= 50-80 even osteoporotic,
                            # so a dark-marrow body can pass: it then also needs a wall and an adjoining lobe ahead) ...
CANAL_BODY_GAP_MM = 3.0     # ... and the body's filled ring adjoins the canal's: their inscribed circles are at most
                            # this much apart (a shared posterior wall; an aorta is set off by its wall and fat)
TRACK_FRONT_SCORE = 2.0     # body-centre track: a row's front lobe is the body's ...
TRACK_OTHER_SCORE = 1.0     # ... a lobe behind it (the filled canal) still counts, for continuity ...
TRACK_CUT_SCORE = 0.5       # ... and least a lobe with a wall in front of it (the canal behind a cut body);
TRACK_CANAL_SCORE = -0.5    # ... a lobe that is the canal (CANAL_CORE_SHARE) is better left out (TRACK_SKIP_COST per
                            # row) than visited: where the bodies' rings open (upper thoracic and cervical bodies on
                            # 3 mm slices) a track through the canal bent the curve 10-15 mm behind C6-T2
CANAL_CORE_SHARE = 0.25     # the canal is a lobe whose middle (a square this share of its inscribed radius to each
                            # side) is darker than CANAL_MAX_HU and that has a wall in front at BODY_RING_LOW_HU (at
                            # half the radius the canal ring's own blurred cortex brought 3 mm chests' thoracic
                            # canals to 70-100 HU)
TRACK_LAT_COST = 0.1        # per mm a lobe lies beside the curve: the body sits on the column's midline (a rotated
                            # scoliotic body moves <= ~8 mm); a contrast-filled aorta (>= 250 HU in an arterial
                            # phase, solid like a filled ring) lies 15-25 mm to the left
TRACK_JUMP_COST = 1.0       # per mm the track moves between visited rows beyond the body centre's own motion:
TRACK_WOBBLE_MM = 5.0       # the inscribed circle's centre of an irregular real body wobbles this much row to row
TRACK_DRIFT = 0.5           # and the body drifts at most this many mm per mm of spine against the coarse path;
                            # the canal lobe lies ~25 mm behind the body: switching to it costs ~20 rows' score
TRACK_SKIP_COST = 0.2       # per mm of rows left out: a disc (5-12 mm) costs less than one jump of a few mm
TRACK_MAX_GAP_MM = 40       # the track may leave out at most this many rows at once (a disc, a cut body)
BODY_TRACK_SMOOTH_MM = 16.0  # the bodies' centre line is smoothed along the spine with this Gaussian: neighbouring
                            # centres differ by a few mm (depths, listhesis, per-row noise on 3 mm scans), and a curve
                            # that follows such a step bends at the disc, so its planes fan out: at 8 mm the
                            # ts-example curve bent with a 34 mm radius at L2/L3, planes 30 mm behind it lay 1.9
                            # times as far apart as on the curve, and L2's posterior endplate fell outside ENDPLATE_TILT_MM.
                            # At 16 a 4 mm step bends it no tighter than a 260 mm radius (a lordosis: >= ~100 mm)
BODY_TILT_MIN_DEG = 8.0     # a body whose two discs both lean this much, the same way, against the planes is read again square to its axis
DISC_TILT_UNREADABLE_DEG = 18.0  # ... and where that fails, a body with a disc this far off its planes is not measured
DISC_TILT_REACH_MM = 10.0   # a disc's darkest row per column is looked for this far from its row on the core
DISC_TILT_INSET_SHARE = 0.2  # ... over the body's depth less this share at each wall (rims, osteophytes)
DISC_TILT_MAX_SPREAD = 0.35  # ... and a slope whose 95 % interval is wider than this (rows per mm; ~20 degrees) is no tilt
DISC_TILT_MIN_COLUMNS = 5   # ... in at least this many columns (1 mm apart)
BODY_TILT_MARGIN_MM = 20.0  # the local frame reaches this far beyond each disc (the neighbours' endplates)
DISC_LOCAL_REACH_MM = 7.0  # on the body's own frame its disc is the darkest row this close to where the tilted disc crosses its axis
SAME_DISCS_MIN_SPAN = 0.75  # the second straightening's discs hold no body shorter than this share of the first's shortest
RECENTRE_EXTRA_ROUNDS = 2   # the bodies' centres re-straightened again at most this often, each round kept where it measures more,
RECENTRE_AGAIN_GAIN = 1.5   # ... and only after a round that measured this many times as many bodies as the curve before it
RECENTRE_MIN_MM = 4.0       # a body whose measured outline is centred further than this from the curve (phantoms:
                            # within 3 mm; ts-example's lordotic L3-L5 7-11 mm), or whose mirror axis lies further
                            # to the side (tcia L5 and S1: 10 mm), has the spine straightened again through the
                            # measured body centres
END_CURVE_OFF_DEG = 15.0    # ... and so has one whose curve crosses the outermost measured body this far off the chord to
                            # its neighbour's centre: a coarse path that wandered from the bodies to the arches at the
                            # field's end (a 3 mm phantom's first body, T9, crossed 20 degrees off: a false grade 2);
                            # the end then follows the parabola through the three outermost centres
END_CHORD_MAX_BEND_DEG = 8.0  # ... only where those three centres' two chords bend less than this (neighbouring bodies
                            # turn 2-6 degrees; a centre misread by 6 mm bends them 25: f4 case 7's T11; and at the
                            # lumbosacral bend, where the column turns sharply into the sacrum, no parabola through
                            # the lumbar centres follows it: ts-example under 30 HU of noise, L3-L5 bending 9.2, had
                            # its end turned, the sacrum read one body up and every label one off)
BODY_RING_MIN_SHARE = 0.3  # rows needed on the body-centre track or showing the canal behind a body whose ring
                           # is open (discs and cut ends make up the rest); with fewer on the track itself the
                           # density profiles' line is offered after it (body_centre.body_offsets)
WALL_RIDGE_HU = 40.0        # a cortical wall stands at least this far above the marrow next to it and is a ridge
                            # of this prominence (after 1 mm sampling; osteoporotic walls ~300-450 HU)
WALL_RIDGE_REACH_MM = 45    # a body's wall ridges lie within this of the straightened (body-centred) curve: half the
                            # deepest body (~35 mm) plus the curve's distance from its centre
WALL_RIDGE_MIN_SPACING_MM = 10  # the wall ridges of the smallest body (C3, ~14 mm deep) lie a few mm inside its surfaces
FRAMED_MARROW_MIN_HU = 0.0  # between the endplates a body holds marrow denser than water (osteoporotic trabecular
                            # bone is ~50-100 HU); the fat in front of a body, blurred by 3 mm voxels, is darker
FRAMED_SHARE = 0.8          # between a body's two wall ridges nearly every column is framed by endplates (not the canal)
FRAME_GAP_MM = 6            # body columns without a visible endplate at one end (Schmorl node, vein) are bridged
CURVE_OFF_BODY_MM = 8       # the straightened curve lies inside the body or at most this far outside it (in the canal)
WALL_OFF_NEIGHBOURS_MM = 8.0  # a body's walls lie within this of its neighbours' (the column's walls run on smoothly)
OUTLINE_DEPTH_OVER_NEIGHBOURS = 1.35  # no body is this many times as deep as the deepest of its neighbours (two or
                            # more, within two places on each side); first outlines on phantoms and real scans lie
                            # 0.5-1.25 times the median, and tcia with 45 HU of noise added 1.46 times the deepest
                            # (T8's back wall placed in the arch, 16 mm behind its own)
WALL_NEAR_RUN_MM = 4       # a wall's ridge lies within this of the last column framed by endplates
WALL_INSIDE_RUN_MM = 8     # ... or this far inside it with only tissue darker than marrow beyond (osteophytes frame
                            # the tissue in front of a degenerate body)
CORTEX_SHELL_MM = 1.0       # thickness of the cortical shell in the surface model (vertebral cortex ~0.5-1.5 mm)
SHELL_FIT_OUT_MM = 5        # the surface model is fitted from this far outside the cortical ridge ...
SHELL_FIT_IN_MM = 4         # ... to this far inside it (marrow level, not the far wall)
SHELL_FIT_IN_THICK_MM = 8   # ... on thick slices, modelled as sampled, this far: two slices' samples inside the edge
SAMPLED_FIT_STEP_MM = 0.25  # the sampled shell fit tries surfaces this far apart before refining the best one
SLICES_OVER_PIXELS = 1.5    # slices at least this many times as far apart as the pixels are a scanner's (each averages
                            # its thickness; in-plane pixels are 0.5-1 mm): the endplate fit models their sampling.
                            # A grid about as coarse in-plane (ts-example, 3 mm cubes) was resampled: interpolated,
                            # not averaged, and modelled so its L1's front read 4.4 mm taller than the peer's
SHELL_MIN_BLUR_MM = 0.3     # blur of the fitted surface: below a 1 mm voxel's own width ...
SHELL_MAX_BLUR_MM = 3.0     # ... up to a 5 mm slice's profile
THICK_SLICE_MM = 2.0        # a CT that samples across the spine this coarsely (a sagittal series' slices) averages what
                            # lies beside the mid-sagittal plane (Straightened.coarse_across)
MODELLED_BLUR_SPACING_MM = 1.75  # slices this far apart along the spine set the blur of the shell fit and are modelled as
                            # sampled (Straightened.thick_sampling_at); closer, the free fit finds the blur itself.
                            # 30 fast phantoms (height MAE): 3 mm slices every 1.5 mm 0.30 mm free, 0.36 modelled;
                            # every 2 mm (a tilted spine crosses them 1.8-2 mm apart) 0.60 free, 0.37 modelled;
                            # 2 mm slices 0.51 / 0.48 free (seeds 4 / 5), 0.42 / 0.40 modelled
SCANNER_BLUR_MM = 0.5       # the scanner's own blur of a bone surface (a Gaussian's sigma, in-plane ~0.4-0.7 mm)
SHELL_MAX_SHIFT_MM = 2.0    # the blur moves the steepest slope at most ~1.5 mm off the surface; more is a failed fit
SHELL_FIT_XTOL = 1e-4       # the fit stops when a step moves the (scaled) parameters by this share: surfaces move
                            # < 0.001 mm from the default 1e-8's, in 15 % fewer model evaluations
BODY_MIN_AP_MM = 15.0   # a body segment on the mid-sagittal profile is at least this deep
BODY_MAX_AP_MM = 65.0
DISC_MIN_SPACING_MM = 14.0  # smallest vertebra pitch (upper thoracic ~ 18 mm with disc)
DISC_PROMINENCE_HU = 25.0   # a disc dips at least this much below the endplates on both sides
DISC_WEAK_PROMINENCE_HU = 15.0  # a missed disc in a pitch gap needs only this dip
DISC_FILL_WALL_RATIO = 0.9  # a gap's core dip whose lateral walls drop below this fraction is a disc (blurred by 3 mm
                            # slices to ~0.8); beside a dark marrow centre they stay at the body's level (~1.0)
DISC_CLEAR_SHARE = 0.5      # where a disc is expected, dips at least this fraction as sharp (depth per row of width)
                            # as the sharpest compete by position (a basivertebral vein mid-body dips less); where
                            # every dip is marrow-like, a wall-breaking one must be this sharp to count as a disc
DISC_REACH_MM = 13.0        # the bony endplates beside a disc lie within this of its centre (half a <= 12 mm
                            # disc + endplate cortex + blur)
DISC_MAX_WIDTH_MM = 14.0    # a disc dip is at most this wide at half depth (<= 12 mm at L4/5 + partial volume);
                            # a dark marrow centre spans most of its body's height (lumbar >= 20 mm)
PITCH_NEIGHBOURS = 4        # the local vertebral pitch is the median of this many nearest disc intervals (it
                            # changes by <= ~10 % per level; a median of four survives one missed disc)
MARROW_DIP_MIN_WIDTH_MM = 8.0  # a body's fatty marrow centre dips over at least this many rows at half depth (3 mm
                            # thoracic phantoms: 8-13); a disc's dip is narrower (2-7)
MARROW_WIDTH_SHARE = 0.33   # a dip at least this share of the local pitch wide at half depth is a body's marrow
                            # centre (3 mm phantoms, against the true pitch: discs 0.1-0.3, marrow centres 0.35-0.6)
MARROW_CENTRES_APART = 0.4  # two such dips this share of an interval apart are two bodies' centres
NEXT_DISC_SHARE = 0.25      # below a caudal end vertebra, a dip within this share of a pitch of where the next disc
                            # is expected is that disc, not a marrow centre (those lie half a pitch on: a quarter is
                            # halfway between)
DISC_WALL_RATIO = 0.62      # at a disc the lateral cortical walls fall below this fraction of their level
                            # around it; inside a body (even a fatty one) they stay above ~0.7
DISC_GAP_WALL_RATIO = 0.9   # in a pitch gap with no core minimum, a lateral-wall dip to this fraction is the disc
                            # (the gap already says a disc is there; at the top of a chest the shoulder girdle and a
                            # curve a few mm beside T1 leave the T1/T2 disc a 0.85 wall dip and no core dip)
MAX_MEASURE_SPACING_MM = 3.5  # heights are measured only where the slices along the spine are at most this far apart and thick.
                              # Phantoms (benchmarks/phantom_eval.py, 30 per seed): 3 mm slices give a height error of
                              # ~1.1 mm and a grade >= 2 specificity of 0.97-0.99; 4 mm gave 1.7-5.2 mm, 5 mm 3-4.5 mm
                              # and up to 7 false grade >= 2 in one chest (8 abdomen/chest phantoms each, 0.8 mm pixels,
                              # measured at commit 96142c5, before this limit; commands in issue 4's stop-11 note)
BODY_MIN_HEIGHT_MM = 6.0    # a body shorter than this is noise (or a grade-3 collapse we cannot measure)
BODY_MAX_HEIGHT_MM = 45.0
TYPICAL_PITCH_MM = 30.0    # disc to disc of a mid-spine vertebra (T12-L1): the pitch to expect before any is measured
TWO_VERTEBRAE_PITCHES = 1.75  # a disc-to-disc span this many local pitches long holds two vertebrae (3 mm phantoms
                            # seeds 5 and 7, 60 scans: all six such spans left after the disc search, 1.90-2.28
                            # pitches, held two bodies' centres: T2/T3 x 4, T7/T8, C7/T1)
BODY_MAX_PITCH_MM = 55.0    # disc to disc over one vertebra: the tallest body (L5 ~ 30-35 mm) + one disc (<= 15 mm);
                            # a longer span is the fused sacrum below S1 or holds a missed disc
KEYPOINT_INSETS_MM = (1.5, 3.0, 5.0)  # the corner heights are measured this far inside the walls: six-point
                            # morphometry puts its corner points at the body's corners, just clear of the wall;
                            # further in where a corner shows no endplate (osteophyte, ring apophysis, vein)
KEYPOINT_DEEP_INSET_MM = 7.0  # ... and this far in where none of those shows one on the mid-sagittal plane: an
                            # anterior ligament ossified over the discs (DISH; tcia T7 and T8) or bridging osteophytes
                            # keep the front columns bright through the disc. A wedge reads a little less deep there.
MIDDLE_COLUMN_SHIFTS_MM = (0.0, -3.0, 3.0)  # the middle height halfway, or beside a focal defect there
PIT_MIN_DEPTH_MM = 1.5      # a middle endplate this far inside the line through its corners may sit in a Schmorl's node
                            # (a node is 2-5 mm deep, 5-10 mm wide, and reads 1.3-1.8 mm where it covers part of the
                            # 5 mm wide column; real concave endplates read 1-1.5 mm on tcia and verse19-007)
PIT_MAX_DEPTH_MM = 5.0      # ... and no deeper than this (a node is rarely deeper; a grade 3 bowl is 5-8 mm deep)
PIT_SIDE_PLANE_SHARE = 0.4  # ... which is told by the same endplate on the sagittal planes this share of the body's half
                            # width to either side (at least PARASAGITTAL_MM) ...
PIT_SIDE_PLANE_MAX_MM = 9.0  # ... and at most this far out (a lumbar half width of 22 mm: 8.8), well inside the span of a
                            # fracture's bowl (0.8 of the half width)
PIT_AP_SHARE = 0.25         # ... and on the midline this share of the body's depth in front of and behind the middle:
PIT_BOWL_SHARE = 0.25       # a node, narrower than either pair's spacing, leaves one side plane less than this share as
                            # deep, where a fracture's central depression, spanning the endplate, is still ~0.56 of its
                            # depth (0.3 in the smallest thoracic bodies) ...
PIT_AP_SHARE_OF_DEPTH = 0.4  # ... and one midline column less than this share (a fracture's bowl: ~0.56 there)
PIT_NEAR_MM = 6.0           # where the CT samples across the spine coarsely (a sagittal reformat's slabs), a node is told on
                            # the midline instead: by the columns this far before and behind the middle (a node is 5-10 mm
                            # wide, at or just off the middle) ...
PIT_NEAR_SHARE = 0.2        # ... both less than this share as deep as the middle (3 mm reformats: nodes 0.00-0.16, bowls 0.26-0.57)
PIT_SIDE_MISREAD_MM = 1.0   # an endplate beside the middle read this far outside its corners' line lies in the disc
                            # (tcia: -2 to -10 mm where an edge was taken across the disc), and one this much deeper
                            # than the middle is no plate beside a pit: the corners' lines are not to be trusted
                            # (beside true nodes on 1 mm phantoms: -0.1 to 0.4 mm, once 1.6 beside a 1.6 mm node)
EDGE_RIDGE_HU = 30.0        # an endplate edge with bone this much brighter than its inner side between it and the disc
                            # lies past the endplate's cortex, at a dip of the marrow's mottle
EDGE_FOOT_SHARE = 0.4       # an edge whose foot (the low point just outside it) lies more than this share of the way
                            # from the disc's darkest row up to its inner side rises from a dip of the marrow
EDGE_SHARE = 0.5            # an edge at least this fraction as steep as the steepest in its window is an endplate
                            # candidate (osteoporotic: a neighbour's cortex across a thin disc is as steep)
DISC_MIDDLE_MARGIN_MM = 2.0  # a corner endplate lies on its own side of the disc's middle row, give or take the
                            # disc's tilt against the straightened rows at the corner
EDGE_SEARCH_MM = 8.0        # an endplate edge lies within this distance of the disc minimum
PARASAGITTAL_MM = 5.0       # corner endplates are also read on sagittal planes this far to each side (the column is
                            # 5 mm wide, so the three do not overlap; a T1 body is ~25 mm wide); the median row is kept
ENDPLATE_TILT_MM = 5.0      # anterior/posterior endplate points lie at most this much further in than the middle one
ENDPLATE_PLANE_SLACK_MM = 3.0  # ... but where one corner shows none there, and the line from the other corner through
                            # the middle sinks past it (a severe wedge), the search goes on to this much past that line
FAINT_CORNER_SHARE = 0.35    # corner edges all fainter than this share of the body's sharpest (middle or corner, mid
                            # plane) show no plate: a disc thinner than the slices vanished there (3 mm, upper
                            # thoracic backs: 12-26 HU/mm against 49-64); read KEYPOINT_DEEP_INSET_MM in instead
ENDPLATE_MIN_STEP_HU = 8.0  # an endplate edge rises at least this many HU per mm
RADIODENSE_HU = 2500.0      # denser than any bone (cortex reads <= ~2000 HU even on 1 mm slices): bone cement made
                            # radiopaque (2500-3500 HU) or metal (titanium, steel: the 12-bit scale's 3071 and beyond)
RADIODENSE_MIN_MM3 = 20.0   # this much in a body is cement or a screw (a 6 mm screw holds 28 mm3 per mm of length),
                            # not noise on a cortex
CUT_BODY_MAX_MM = 30        # a body cut by the field of view is looked for at most this far from its disc
FOV_MARGIN_MM = 3.0         # a body whose endplate is closer than this to the volume end is cut by the FOV

# --- Labelling evidence ---
LUNG_BAND_MM = (30.0, 110.0)  # lungs lie beside a thoracic body, this far out from its midline (the sacrum's alae
                              # and the iliac wings fill the same band with bone and muscle)
LUNG_HALF_AP_MM = 40.0       # ... within this of the body's centre, front to back
LUNG_SIDE_SHARE = 0.2        # ... air in at least this share of the band on each side (tcia T5-T9 0.66-0.76,
                             # T10 0.21 / 0.68, T11 0.02 / 0.12, lumbar spine and sacrum 0)
RIB_HU = 150.0          # ribs are thin: their cortex after 1 mm sampling of 1-3 mm slices
RIB_REACH_MM = 52.0     # a rib runs on laterally past this; lumbar transverse processes end at ~35-50 mm (L3)
RIB_OTHER_SIDE_MM = 40.0  # ... and the other side at least this far (or into the edge of a tight crop)
RIB_HEAD_VIEW_MM = 28.0  # a body cut by the field's lower edge is rib-free evidence only when this much of it lies in
                         # view below its upper disc: the 12th rib runs down and out of a field that cuts T12 (tcia
                         # T12 cut 16-23 mm below its disc: its rib reached 43-48 mm, as L1's transverse process
                         # does, 40; cut 29 mm below it, 60)
RIB_SURE_MM = 60.0      # one side this far is a rib whatever the other side shows (a transverse process
                        # never reaches it; the other rib may be outside the field or short)
CERVICAL_REACH_MM = 40.0  # within its own rows (none below) a cervical vertebra's bone ends short of this on its
                          # shorter side (C7's transverse process, the longest, ~35-38 mm from the midline;
                          # phantoms 26-30); T1's first rib pair reaches it on both sides there (a real first rib
                          # ~50-60 mm; phantoms 38-58 on the shorter side, 30 on one small chest). With the rows
                          # below (rows_below), C7 reaches T1's rib through their facet joints (phantoms up to
                          # 68 mm on one side)
FIRST_RIB_UNSURE_CONFIDENCE = 0.4  # label confidence at most, where the levels are counted from T1 and the two
                                   # readings of the first rib-bearing vertebra disagree
PELVIS_HU = 150.0
PELVIS_REACH_MM = 65.0  # at S1 the alae and ilia form one bony shadow past this on both sides
PELVIS_OTHER_SIDE_MM = 40.0  # ... a rotated pelvis still shows this much on its shorter side (the ala alone)
VERTEBRA_MIN_REACH_MM = 20.0  # a vertebra's own bone (body, pedicles, articular processes) reaches this far to each side of
                             # its midline at every level: a shorter reach means the field cuts it on that side
ALA_REACH_MM = 40.0          # S1's alae reach past this on both sides in every row of the body (phantoms, ts-example);
ALA_ROWS_SHARE = 0.9         # ... a body flanked so in this share of its rows is sacral, not thoracic: a rib crosses
                             # 0.4-0.8 of a thoracic body's rows, a lumbar transverse process at most 0.25
ONE_SIDED_RIB_CONFIDENCE = 0.5  # label confidence at most, where the body below T12 reaches a rib's length on one
                               # side only (it may bear the 12th rib: levels one too high)
ONE_SIDED_S1_CONFIDENCE = 0.6  # label confidence at most, where S1 is flanked on one side only (it may be L5)
MIRROR_HALF_WIDTH_MM = 30.0  # the vertebra's midline is its mirror axis over this much to each side: half a lumbar
                             # body (~25 mm) with its pedicles and facets; ilia and rib shafts lie farther out
MIRROR_MAX_SHIFT_MM = 25.0   # the axis is looked for this far beside the curve: on a tight crop the curve can run in
                             # a facet column (the facets lie 15-25 mm off the midline)
MIRROR_CLIP_HU = 1000.0      # the section is compared in HU clipped to air..this: dense cortex does not outweigh shape
MIRROR_MIN_NCC = 0.6         # a vertebra correlates with its mirror image at 0.6-0.95 (phantoms: 95 % of bodies,
                             # median 0.84; verse19-006 0.86-0.93); below it the section gives no reliable axis
MIRROR_MIN_SHIFT_MM = 4.0    # an axis this close to the curve is the curve (2 mm samples, a rotated body's asymmetry)
MIRROR_MIN_SHIFT_THICK_MM = 2.0  # ... where the CT samples across the spine at THICK_SLICE_MM or coarser (a sagittal
                             # series): 3 mm sagittal reformats of the 1 mm seed 4 phantoms read bodies 1.29 mm to the
                             # side on average, 27 of 310 more than 3 mm (a grade 3 biconcave T9 read 0 on a plane 4 mm
                             # off); with 2 mm: 1.04 mm, 6; on axial slices 2 mm changed six grades either way
MIRROR_AGREE_MM = 6.0        # neighbouring vertebrae's axes agree within this when the smooth curve runs beside the
                             # column (006: 16, 18, 22 mm); lone sacral axes at the field's end jump 20-35 mm
# --- Roll: the vertebrae turned about the spine's axis (roll.py) ---
ROLL_WINDOW_MM = 31.0     # rows averaged per estimate: about a lumbar vertebra, disc to disc
ROLL_STEP_MM = 20.0       # one estimate every this many rows: the roll of a scoliotic column changes over vertebrae
ROLL_SAMPLE_MM = 2.0      # the averaged section is compared at this spacing (the arch's laminae are >= 4 mm thick)
ROLL_SOFT_HU = 100.0      # HU below this count as soft tissue, all alike: liver, spleen and bowel are no mirror images
                          # (300 would flatten a contrast-filled aorta too, which biases phantoms ~2 degrees, but
                          # also the blurred cortex of osteoporotic bone on 3 mm slices, 150-250 HU)
ROLL_MAX_DEG = 40.0       # the mirror line is looked for this far either side of the column direction
ROLL_COARSE_DEG = 4.0     # first every this many degrees, then every degree around the best
ROLL_MAX_SHIFT_MM = 10.0  # ... through points this far beside the curve (it runs in body, canal or arch, near the line)
ROLL_MIN_NCC = 0.8        # a window is trusted at this correlation with its mirror image (tcia: spine 0.79-0.98,
                          # the pelvis and the sacrum 0.66-0.78, with angles all over the place)
ROLL_MAX_SPREAD_DEG = 15.0  # a window this far from the median of the trusted ones is left out: the roll of a scoliotic
                           # column changes over its curve by about 10 degrees at 20 degrees of curve (Cobb)
ROLL_MIN_WINDOWS = 3      # fewer trusted windows say nothing of the spine's roll
ROLL_MEDIAN_WINDOWS = 5   # the windows' angles are median-filtered over this many neighbours (~100 mm of spine)
ROLL_GRID_DEG = 0.1       # a window's mirror axis (about its curve) is taken as a roll about the long axis to this step ...
ROLL_GRID_MAX_DEG = 89.0  # ... up to this either way (the mirror search looks ROLL_MAX_DEG about the curve)
ROLL_MIN_DEG = 8.0        # the planes are turned only where the roll reaches this somewhere: on phantoms, which never
                          # roll, single windows read up to 7 degrees and the smoothed roll up to ~6; a few degrees
                          # move a body's mid-sagittal heights by a fraction of a millimetre
LUMBAR_COUNT = 5
THORACIC_COUNT = 12  # rib-bearing vertebrae, T1-T12; 11 or 13 pairs occur in a few per cent of people
RIB_COUNT_CONFIDENCE = 0.5  # label confidence at most, where the first and the last rib are both in view and the
                            # rib-bearing vertebrae between them are not THORACIC_COUNT (the thoracic levels, or the
                            # lumbar ones, are one off whichever anchor the count starts from)
LUMBAR_MIN_PITCH_MM = 28.0  # disc to disc of a lumbar vertebra (L1 ~ 30-35 mm); cervical ones are <= ~20 mm
                            # (a disc at this pitch is 8-12 mm tall and always dips the core: vertebrae._thin_discs_possible)
SACRUM_TRAILING_BODIES = 3  # sacral segments / coccyx below the pelvis that may end a long field of view
SACRUM_MAX_BODIES = 6  # a pelvic run holds the five sacral segments (one may split in two on a 3 mm scan): a longer
                       # run of flanked bodies is a chest field's rib cage above them (T1-T11 seen from C7)
