-- The buildings whose notices reach a user in a community today: the buildings their scope
-- names (SetUserScope) and those of the rooms their resident record lives in today. A move-in
-- or move-out takes effect on its day for the notice feed too, not at the next sign-in, and a
-- move-in dated next week reaches the building's notices next week (0017's residency rule).
CREATE FUNCTION user_buildings_today(member uuid, community uuid) RETURNS TABLE (building_id uuid)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT ub.building_id FROM user_buildings ub WHERE ub.user_id = member
    UNION
    SELECT r.building_id FROM residents p
    JOIN residencies res ON res.resident_id = p.id
    JOIN rooms r ON r.id = res.room_id
    WHERE p.community_id = community AND p.user_id = member
      AND resides_on(res.move_in, res.move_out, community_today(community))
$$;

CREATE INDEX residencies_resident ON residencies (resident_id, move_in);
